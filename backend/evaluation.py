"""Score a method on a folder of cloudy/target pairs beside the baselines: the core of ``python -m backend eval``.

The folder layout is ``models.datasets.paired``'s. Each image is scored (PSNR, SSIM, MAE, SAM over all bands,
reflectance 0-1) over three regions of its cloud mask: every pixel, the cloudy ones (did the method remove the
cloud?) and the clear ones (did it leave clear ground alone?). The mask is the folder's own (``mask/``) where it has
one, else s2cloudless on the cloudy input (Sentinel-2), else the learnt RGB cloud detector (RGB). Beside the
method: the cloudy input, the naive fill and, with further dates (``date2/``, ...), the least cloudy date and the
masked median over the dates (``models.baselines``). Means are given overall and by cloud cover (20 % bins).

``evaluate_folder`` takes any ``predict(cloudy, sar[, extra]) -> reflectance`` function, which keeps it testable
without a model; ``backend.commands.eval`` builds the one that runs the backend's pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rasterio

from backend.evaluation_report import (
    BinScores,
    ImageScores,
    RegionScores,
    Report,
    Scores,
    stretch_limits,
    true_colour,
    write_report,
)
from models.baselines import (
    BASELINES,
    CLOUDY_INPUT,
    DATE_BASELINES,
    LEAST_CLOUDY,
    LOCAL_FILL,
    MASKED_MEDIAN,
    NAIVE_FILL,
    cloudy_input,
    least_cloudy,
    local_fill_baseline,
    masked_median,
    naive_fill,
)
from models.card import RGB_BANDS
from models.cloudmask import RGB_CLOUD_LABEL, cloud_fraction, cloud_mask, image_clouds
from models.datasets.paired import PairedItem, find_paired
from models.datasets.rasters import is_eight_bit_image, read_reflectance
from models.metrics import METRIC_NAMES, REGIONS, region_metrics

# predict(cloudy file, SAR file or None[, further dates]) -> (C, H, W) reflectance 0-1 on the cloudy image's grid.
# The further dates are passed only for folders that have them.
Predict = Callable[..., np.ndarray]
COVER_BINS = tuple((low, low + 20) for low in range(0, 100, 20))
S2CLOUDLESS_LABEL = "s2cloudless (threshold 0.4, averaged over 4 px, dilated by 2 px)"
S2CLOUDLESS_L2A_LABEL = "s2cloudless on L2A (B10 filled with a constant; less reliable)"
FOLDER_MASK_LABEL = "the folder's own cloud mask (mask/)"
DEFAULT_GRID_ROWS = 8


class EvaluationError(Exception):
    """An evaluation that cannot go on; the message says what the user should fix."""


def measure_clouds(cloudy: np.ndarray) -> tuple[np.ndarray, str]:
    """Cloud mask of a cloudy input and how it was found.

    Args:
        cloudy: (C, H, W) reflectance 0-1. 13 bands (L1C) or 12 (L2A) use s2cloudless; anything else uses the
            learnt RGB cloud detector on its first three bands, taken as R, G, B (as ``run`` does).

    Returns:
        (H, W) bool mask, True where cloudy, and a label for the report.
    """
    if cloudy.shape[0] == 13:
        return cloud_mask(cloudy), S2CLOUDLESS_LABEL
    if cloudy.shape[0] == 12:
        return cloud_mask(cloudy), S2CLOUDLESS_L2A_LABEL
    if cloudy.shape[0] < 3:
        raise EvaluationError(f"the cloudy images have {cloudy.shape[0]} bands; evaluation needs at least R, G, B")
    return image_clouds(cloudy[:3], RGB_BANDS)[1], RGB_CLOUD_LABEL


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A folder's cloud mask: its first band, True where nonzero, checked against the image's (H, W)."""
    with rasterio.open(path) as dataset:
        mask = dataset.read(1) != 0
    if mask.shape != shape:
        raise EvaluationError(f"{path.name}: the mask {mask.shape} and the cloudy image {shape} differ in size")
    return mask


def cover_bin(fraction: float) -> int:
    """Index in ``COVER_BINS`` of a cloud fraction (0-1); 100 % falls in the last bin."""
    return min(int(fraction * 100.0 // 20), len(COVER_BINS) - 1)


def _mean(values: list[float]) -> float:
    kept = np.array(values, dtype=np.float64)
    kept = kept[~np.isnan(kept)]
    return float(kept.mean()) if kept.size else math.nan


def mean_scores(images: Sequence[ImageScores], columns: Sequence[str], region: str = "all") -> Scores:
    """Column -> metric -> mean over images of one region, NaN values skipped (as UnCRtainTS averages)."""
    return {
        column: {metric: _mean([item.region(region)[column][metric] for item in images]) for metric in METRIC_NAMES}
        for column in columns
    }


def bin_scores(images: Sequence[ImageScores], columns: Sequence[str]) -> tuple[BinScores, ...]:
    """Mean scores per cloud-cover bin of ``COVER_BINS`` (empty bins have count 0 and no scores)."""
    result = []
    for index, (low, high) in enumerate(COVER_BINS):
        members = [item for item in images if cover_bin(item.cloud_fraction) == index]
        result.append(BinScores(low, high, len(members), mean_scores(members, columns) if members else {}))
    return tuple(result)


def _read_image(path: Path, shape: tuple[int, ...], role: str) -> np.ndarray:
    image = read_reflectance(path)
    if image.shape != shape:
        raise EvaluationError(f"{path.name}: the {role} {image.shape} and the cloudy image {shape} differ in shape")
    return image


def baseline_predictions(item: PairedItem, cloudy: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The baselines of one image: cloudy input, naive fill, and with further dates the two date baselines."""
    predictions = {
        CLOUDY_INPUT: cloudy_input(cloudy),
        NAIVE_FILL: naive_fill(cloudy, mask),
        LOCAL_FILL: local_fill_baseline(cloudy, mask),
    }
    if item.extra:
        dates = [cloudy] + [_read_image(path, cloudy.shape, "further date") for path in item.extra]
        masks = [mask] + [measure_clouds(date)[0] for date in dates[1:]]
        stack, mask_stack = np.stack(dates), np.stack(masks)
        predictions[LEAST_CLOUDY] = least_cloudy(stack, mask_stack)
        predictions[MASKED_MEDIAN] = masked_median(stack, mask_stack)
    return predictions


def score_item(
    item: PairedItem, predict: Predict | None, method: str
) -> tuple[ImageScores, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Scores of one image, the predictions by column, its target and its cloud mask."""
    cloudy = read_reflectance(item.cloudy)
    target = _read_image(item.target, cloudy.shape, "target")
    if item.mask is not None:
        mask, label = read_mask(item.mask, cloudy.shape[1:]), FOLDER_MASK_LABEL
    else:
        mask, label = measure_clouds(cloudy)
    predictions = baseline_predictions(item, cloudy, mask)
    if predict is not None:
        raw = predict(item.cloudy, item.sar, item.extra) if item.extra else predict(item.cloudy, item.sar)
        output = np.asarray(raw, dtype=np.float32)
        if output.shape != target.shape:
            raise EvaluationError(
                f"{item.name}: the {method} output {output.shape} differs from the target {target.shape}"
            )
        predictions[method] = output
    by_column = {column: region_metrics(prediction, target, mask) for column, prediction in predictions.items()}
    regions: RegionScores = {region: {c: by_column[c][region] for c in by_column} for region in REGIONS}
    return ImageScores(item.name, cloud_fraction(mask), label, regions["all"], regions), predictions, target, mask


def evaluate_folder(
    data_dir: Path,
    predict: Predict | None,
    out_dir: Path | None = None,
    *,
    method: str = "output",
    grid_rows: int = DEFAULT_GRID_ROWS,
    log: Callable[[str], None] | None = None,
) -> Report:
    """Score the baselines, and a method when ``predict`` is given, on every image of an evaluation folder.

    Args:
        data_dir: folder with ``cloudy/``, ``target/`` and optionally ``sar/``, ``mask/``, ``date2/``, ...
        predict: ``predict(cloudy_path, sar_path_or_None)`` (with a third argument, the further dates, for folders
            that have them) -> (C, H, W) reflectance 0-1; None scores only the baselines.
        out_dir: where ``report.md``, ``report.json`` and ``grid.png`` go; None writes nothing.
        method: the column name of the method's output.
        grid_rows: how many images (the first ones) the PNG grid shows.
        log: receives one line per image (progress); None is silent.

    Returns:
        The report.

    Raises:
        DatasetError: the folder does not hold matching pairs.
        EvaluationError: an image or an output does not fit its target.
    """
    if method in BASELINES + DATE_BASELINES:
        raise EvaluationError(f"{method!r} is the name of a baseline; give the method another name")
    items = find_paired(Path(data_dir))
    baselines = BASELINES + (DATE_BASELINES if items[0].extra else ())
    columns = (*baselines, method) if predict is not None else baselines
    images: list[ImageScores] = []
    grid: list[list[np.ndarray]] = []
    for number, item in enumerate(items, start=1):
        scored, predictions, target, _ = score_item(item, predict, method)
        images.append(scored)
        if log is not None:
            psnr = ", ".join(
                f"{column} {scored.scores[column]['psnr']:.2f} (cloud {scored.region('cloud')[column]['psnr']:.2f})"
                for column in columns
            )
            log(f"[{number}/{len(items)}] {item.name}: cloud {100 * scored.cloud_fraction:.0f} %, PSNR {psnr}")
        if len(grid) < grid_rows:
            # One stretch per row, from the target, so every picture of a row is shown on the same scale.
            limits = None if is_eight_bit_image(item.target) else stretch_limits(target)
            grid.append([true_colour(predictions[c], limits) for c in columns] + [true_colour(target, limits)])
    labels = sorted({item.cloud_mask for item in images})
    report = Report(
        method=method if predict is not None else "none",
        data_dir=str(data_dir),
        columns=columns,
        cloud_mask=labels[0] if len(labels) == 1 else "mixed: " + "; ".join(labels),
        images=tuple(images),
        mean=mean_scores(images, columns),
        bins=bin_scores(images, columns),
        region_mean={region: mean_scores(images, columns, region) for region in REGIONS[1:]},
    )
    if out_dir is not None:
        write_report(report, Path(out_dir), grid, [*columns, "target"])
    return report
