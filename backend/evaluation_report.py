"""An evaluation's results as values, and their three renderings: Markdown, JSON and a PNG grid of examples.

JSON has no infinity or NaN, so non-finite scores are written as the strings ``"inf"`` and ``"nan"`` (PSNR is
infinite when a prediction equals its target).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from models.metrics import METRIC_NAMES

Scores = dict[str, dict[str, float]]  # column (method or baseline) -> metric -> value
RegionScores = dict[str, Scores]  # region ("all", "cloud", "clear") -> scores
REGION_TITLES = {"cloud": "Under clouds (pixels of the cloud mask)", "clear": "Clear pixels (outside the cloud mask)"}
METRIC_HEADERS = {"psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "mae": "MAE ↓", "sam": "SAM (°) ↓"}
MARKDOWN_IMAGE_ROWS = 200  # the JSON always lists every image
# Percentiles of the true-colour stretch: clip the darkest and brightest 2 % so one cloud does not grey the scene.
STRETCH_PERCENTILES = (2.0, 98.0)
HEADER_PX = 18


@dataclass(frozen=True)
class ImageScores:
    """One image's scores.

    Attributes:
        name: the file name.
        cloud_fraction: share of cloudy pixels in the cloudy input, 0-1.
        cloud_mask: how clouds were found (``s2cloudless`` or the learnt RGB detector).
        scores: column -> metric -> value, over every pixel.
        regions: region (``all``, ``cloud``, ``clear``) -> column -> metric -> value; empty when not measured.
    """

    name: str
    cloud_fraction: float
    cloud_mask: str
    scores: Scores
    regions: RegionScores = field(default_factory=dict)

    def region(self, name: str) -> Scores:
        """The scores over one region (``all`` is :attr:`scores`)."""
        return self.scores if name == "all" else self.regions[name]


@dataclass(frozen=True)
class BinScores:
    """Mean scores of the images whose cloud cover (percent) lies in [low, high); the last bin includes 100."""

    low: int
    high: int
    count: int
    mean: Scores


@dataclass(frozen=True)
class Report:
    """A whole evaluation.

    Attributes:
        method: the evaluated method (``none`` for baselines only).
        data_dir: the evaluation folder.
        columns: what was scored, baselines first, then the method's output.
        cloud_mask: how cloud cover was measured, for the reader.
        images: per-image scores.
        mean: column -> metric -> mean over images (NaN values skipped).
        bins: mean scores by cloud-cover bin.
        region_mean: region (``cloud``, ``clear``) -> column -> metric -> mean over images.
    """

    method: str
    data_dir: str
    columns: tuple[str, ...]
    cloud_mask: str
    images: tuple[ImageScores, ...]
    mean: Scores
    bins: tuple[BinScores, ...]
    region_mean: RegionScores = field(default_factory=dict)


def _finite_or_text(value: float) -> float | str:
    """A score JSON can hold: the number, or ``"inf"``/``"-inf"``/``"nan"``."""
    return value if math.isfinite(value) else str(value)


def _json_scores(scores: Scores) -> dict[str, dict[str, float | str]]:
    return {column: {key: _finite_or_text(value) for key, value in row.items()} for column, row in scores.items()}


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready plain data."""
    return {
        "method": report.method,
        "data": report.data_dir,
        "columns": list(report.columns),
        "cloud_mask": report.cloud_mask,
        "metrics": list(METRIC_NAMES),
        "mean": _json_scores(report.mean),
        "region_mean": {region: _json_scores(scores) for region, scores in report.region_mean.items()},
        "bins": [
            {"cloud_percent": [item.low, item.high], "count": item.count, "mean": _json_scores(item.mean)}
            for item in report.bins
        ],
        "images": [
            {
                "name": item.name,
                "cloud_fraction": round(item.cloud_fraction, 4),
                "cloud_mask": item.cloud_mask,
                "scores": _json_scores(item.scores),
                "regions": {region: _json_scores(scores) for region, scores in item.regions.items()},
            }
            for item in report.images
        ],
    }


def _cell(metric: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.2f}" if metric in ("psnr", "sam") else f"{value:.4f}"


def _score_table(scores: Scores, columns: Sequence[str], label: str) -> list[str]:
    lines = [f"| {label} | " + " | ".join(METRIC_HEADERS[m] for m in METRIC_NAMES) + " |"]
    lines.append("|---|" + "---:|" * len(METRIC_NAMES))
    for column in columns:
        row = scores.get(column, {})
        lines.append(f"| {column} | " + " | ".join(_cell(m, row.get(m)) for m in METRIC_NAMES) + " |")
    return lines


def render_markdown(report: Report) -> str:
    """The report as a Markdown page: means, cloud-cover bins, then per-image scores."""
    lines = [
        f"# Evaluation: {report.method}",
        "",
        f"Data: `{report.data_dir}`, {len(report.images)} images. Metrics over all bands and pixels, reflectance 0-1;",
        "mean of per-image values. Baselines: the cloudy input itself, the naive fill (cloudy pixels replaced by",
        "their band's median over clear pixels) and, with several dates, the least cloudy date and the per-pixel",
        f"median over the clear dates. Cloud mask: {report.cloud_mask}.",
        "",
        "## Mean over all images",
        "",
        *_score_table(report.mean, report.columns, "method"),
    ]
    for region, scores in report.region_mean.items():
        lines += ["", f"## {REGION_TITLES.get(region, region)}", "", *_score_table(scores, report.columns, "method")]
    lines += [
        "",
        "## By cloud cover",
    ]
    for group in report.bins:
        lines += ["", f"### {group.low}-{group.high} % cloud ({group.count} images)", ""]
        lines += _score_table(group.mean, report.columns, "method") if group.count else ["No images."]
    lines += ["", "## Per image", ""]
    header = "| image | cloud % | " + " | ".join(f"{c}: PSNR / under cloud" for c in report.columns) + " |"
    lines += [header, "|---|---:|" + "---|" * len(report.columns)]
    for item in report.images[:MARKDOWN_IMAGE_ROWS]:
        cloud = item.regions.get("cloud", {})
        cells = [
            f"{_cell('psnr', item.scores[c]['psnr'])} / {_cell('psnr', cloud.get(c, {}).get('psnr'))}"
            for c in report.columns
        ]
        lines.append(f"| {item.name} | {100 * item.cloud_fraction:.1f} | " + " | ".join(cells) + " |")
    if len(report.images) > MARKDOWN_IMAGE_ROWS:
        lines.append(f"\n{len(report.images) - MARKDOWN_IMAGE_ROWS} more images in report.json.")
    return "\n".join(lines) + "\n"


def true_colour_bands(band_count: int) -> tuple[int, ...]:
    """Indices of red, green, blue: B4, B3, B2 for 12/13-band Sentinel-2, the first three otherwise."""
    if band_count >= 12:
        return (3, 2, 1)
    if band_count >= 3:
        return (0, 1, 2)
    return (0, 0, 0)


def stretch_limits(reflectance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (low, high) of the true-colour percentile stretch, from (C, H, W) reflectance."""
    rgb = reflectance[list(true_colour_bands(reflectance.shape[0]))].reshape(3, -1)
    low, high = np.percentile(rgb, STRETCH_PERCENTILES, axis=1)
    return low, np.maximum(high, low + 1e-6)


def true_colour(
    reflectance: np.ndarray, limits: tuple[np.ndarray, np.ndarray] | None = None, max_side: int = 256
) -> np.ndarray:
    """An 8-bit (H, W, 3) picture of an image.

    Args:
        reflectance: (C, H, W), 0-1.
        limits: per-band (low, high) stretch, shared by all pictures of a row so they compare; None shows the
            values as they are (8-bit RGB sources).
        max_side: larger images are subsampled to at most this many pixels a side.
    """
    rgb = reflectance[list(true_colour_bands(reflectance.shape[0]))]
    step = max(1, math.ceil(max(rgb.shape[1:]) / max_side))
    rgb = rgb[:, ::step, ::step]
    if limits is not None:
        low, high = limits
        rgb = (rgb - low[:, None, None]) / (high - low)[:, None, None]
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def write_grid(rows: Sequence[Sequence[np.ndarray]], columns: Sequence[str], path: Path) -> None:
    """Write a PNG of pictures: one row per image, one column per ``columns`` label, labels on top.

    Args:
        rows: per image, one (H, W, 3) uint8 picture per column (pictures may differ in size between rows).
        columns: the column labels.
        path: the PNG to write.
    """
    cell_w = max(picture.shape[1] for row in rows for picture in row)
    cell_h = [max(picture.shape[0] for picture in row) for row in rows]
    canvas = Image.new("RGB", (cell_w * len(columns), HEADER_PX + sum(cell_h)), "white")
    draw = ImageDraw.Draw(canvas)
    for index, label in enumerate(columns):
        draw.text((index * cell_w + 4, 3), label, fill="black")
    top = HEADER_PX
    for row, height in zip(rows, cell_h, strict=True):
        for index, picture in enumerate(row):
            canvas.paste(Image.fromarray(picture), (index * cell_w, top))
        top += height
    canvas.save(path)


def write_report(
    report: Report, out_dir: Path, grid: Sequence[Sequence[np.ndarray]], grid_columns: Sequence[str]
) -> Mapping[str, Path]:
    """Write ``report.md``, ``report.json`` and (when ``grid`` has rows) ``grid.png`` into ``out_dir``.

    Returns:
        kind (``markdown``, ``json``, ``grid``) -> the written path.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"markdown": out_dir / "report.md", "json": out_dir / "report.json"}
    written["markdown"].write_text(render_markdown(report), encoding="utf-8")
    written["json"].write_text(json.dumps(report_to_dict(report), indent=2, ensure_ascii=False), encoding="utf-8")
    if grid:
        written["grid"] = out_dir / "grid.png"
        write_grid(grid, grid_columns, written["grid"])
    return written
