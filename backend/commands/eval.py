"""``python -m backend eval``: score a method on a folder of cloudy/target pairs, beside the two baselines.

The folder holds ``cloudy/``, ``target/`` and optionally ``sar/`` with matching file names (see
``models.datasets.paired``). Each image is scored (PSNR, SSIM, MAE, SAM over all bands, reflectance 0-1) for the
cloudy input itself, the naive fill and the method's output; means are given overall and by cloud cover
(s2cloudless on the cloudy input, in 20 % bins). Markdown, JSON and a PNG grid of examples go to ``--out``.

The method's output comes from the backend's own pipeline (``backend.pipeline.run_removal``, what
``python -m backend run`` runs for the QGIS plugin), written to a GeoTIFF and read back, so the scores measure exactly
what users get: band mapping, scaling, tiling, blending and writing included. ``evaluate_folder`` takes any
``predict(cloudy, sar) -> reflectance`` function, which keeps it testable without a model.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.errors import NotGeoreferencedWarning

from backend.evaluation_report import (
    BinScores,
    ImageScores,
    Report,
    Scores,
    render_markdown,
    stretch_limits,
    true_colour,
    write_report,
)
from backend.protocol import EXIT_OK, EXIT_USER_ERROR
from models.baselines import BASELINES, CLOUDY_INPUT, NAIVE_FILL, cloudy_input, naive_fill
from models.cloudmask import brightness_cloud_mask, cloud_fraction, cloud_mask
from models.datasets.paired import PairedItem, find_paired
from models.datasets.rasters import DatasetError, is_eight_bit_image, read_reflectance
from models.metrics import METRIC_NAMES, all_metrics

if TYPE_CHECKING:  # the networks are imported only when a method runs (``eval none`` needs none of them)
    import torch
    from torch import nn

    from backend.job import Job
    from backend.pipeline import Restorer
    from backend.reporter import Reporter
    from backend.worker import NetworkHook
    from models.card import ModelCard

# predict(cloudy file, SAR file or None) -> (C, H, W) reflectance 0-1 on the cloudy image's grid.
Predict = Callable[[Path, Path | None], np.ndarray]
METHODS = ("none", "dbcr", "diffcr", "de")
COVER_BINS = tuple((low, low + 20) for low in range(0, 100, 20))
S2CLOUDLESS_LABEL = "s2cloudless (threshold 0.4, averaged over 4 px, dilated by 2 px)"
S2CLOUDLESS_L2A_LABEL = "s2cloudless on L2A (B10 filled with a constant; less reliable)"
BRIGHTNESS_LABEL = "brightness heuristic (bright, grey pixels; s2cloudless needs Sentinel-2 bands)"
DEFAULT_GRID_ROWS = 8


class EvaluationError(Exception):
    """An evaluation that cannot go on; the message says what the user should fix."""


def measure_clouds(cloudy: np.ndarray) -> tuple[np.ndarray, str]:
    """Cloud mask of a cloudy input and how it was found.

    Args:
        cloudy: (C, H, W) reflectance 0-1. 13 bands (L1C) or 12 (L2A) use s2cloudless; anything else uses the
            brightness heuristic on its first three bands, taken as R, G, B.

    Returns:
        (H, W) bool mask, True where cloudy, and a label for the report.
    """
    if cloudy.shape[0] == 13:
        return cloud_mask(cloudy), S2CLOUDLESS_LABEL
    if cloudy.shape[0] == 12:
        return cloud_mask(cloudy), S2CLOUDLESS_L2A_LABEL
    if cloudy.shape[0] < 3:
        raise EvaluationError(f"the cloudy images have {cloudy.shape[0]} bands; evaluation needs at least R, G, B")
    return brightness_cloud_mask(cloudy[:3]), BRIGHTNESS_LABEL


def cover_bin(fraction: float) -> int:
    """Index in ``COVER_BINS`` of a cloud fraction (0-1); 100 % falls in the last bin."""
    return min(int(fraction * 100.0 // 20), len(COVER_BINS) - 1)


def mean_scores(images: Sequence[ImageScores], columns: Sequence[str]) -> Scores:
    """Column -> metric -> mean over images, NaN values skipped (as UnCRtainTS averages); NaN when none is left."""
    mean: Scores = {}
    for column in columns:
        mean[column] = {}
        for metric in METRIC_NAMES:
            values = np.array([item.scores[column][metric] for item in images], dtype=np.float64)
            values = values[~np.isnan(values)]
            mean[column][metric] = float(values.mean()) if values.size else math.nan
    return mean


def bin_scores(images: Sequence[ImageScores], columns: Sequence[str]) -> tuple[BinScores, ...]:
    """Mean scores per cloud-cover bin of ``COVER_BINS`` (empty bins have count 0 and no scores)."""
    result = []
    for index, (low, high) in enumerate(COVER_BINS):
        members = [item for item in images if cover_bin(item.cloud_fraction) == index]
        result.append(BinScores(low, high, len(members), mean_scores(members, columns) if members else {}))
    return tuple(result)


def _score_item(
    item: PairedItem, predict: Predict | None, method: str
) -> tuple[ImageScores, dict[str, np.ndarray], np.ndarray]:
    """Scores of one image, the predictions by column, and its target."""
    cloudy = read_reflectance(item.cloudy)
    target = read_reflectance(item.target)
    if cloudy.shape != target.shape:
        raise EvaluationError(f"{item.name}: cloudy image {cloudy.shape} and target {target.shape} differ in shape")
    mask, label = measure_clouds(cloudy)
    predictions = {CLOUDY_INPUT: cloudy_input(cloudy), NAIVE_FILL: naive_fill(cloudy, mask)}
    if predict is not None:
        output = np.asarray(predict(item.cloudy, item.sar), dtype=np.float32)
        if output.shape != target.shape:
            raise EvaluationError(
                f"{item.name}: the {method} output {output.shape} differs from the target {target.shape}"
            )
        predictions[method] = output
    scores = {column: all_metrics(prediction, target) for column, prediction in predictions.items()}
    return ImageScores(item.name, cloud_fraction(mask), label, scores), predictions, target


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
        data_dir: folder with ``cloudy/``, ``target/`` and optionally ``sar/`` (matching file names).
        predict: ``predict(cloudy_path, sar_path_or_None) -> (C, H, W)`` reflectance 0-1; None scores only the
            baselines.
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
    if method in BASELINES:
        raise EvaluationError(f"{method!r} is the name of a baseline; give the method another name")
    items = find_paired(Path(data_dir))
    columns = (*BASELINES, method) if predict is not None else BASELINES
    images: list[ImageScores] = []
    grid: list[list[np.ndarray]] = []
    for number, item in enumerate(items, start=1):
        scored, predictions, target = _score_item(item, predict, method)
        images.append(scored)
        if log is not None:
            psnr = ", ".join(f"{column} {scored.scores[column]['psnr']:.2f}" for column in columns)
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
    )
    if out_dir is not None:
        write_report(report, Path(out_dir), grid, [*columns, "target"])
    return report


def pipeline_predictor(
    method: str,
    workdir: Path,
    model: str | None = None,
    nfe: int | None = None,
    device: str = "auto",
    seed: int = 0,
    adapt: int = 0,
    keep_clear: bool = False,
    runtime: str = "torch",
) -> Predict:
    """A ``predict`` that restores each image with the backend's own pipeline and reads the GeoTIFF back.

    The model is loaded once (``backend.worker.load_restorer``, as ``python -m backend run`` loads it); each image
    then goes through ``backend.pipeline.run_removal`` (band mapping, scaling, tiling with overlap blending,
    writing) exactly as it does for users.

    Args:
        method: the algorithm (``dbcr``, ``diffcr``, ``de``).
        workdir: a scratch folder for the outputs (each is removed once read).
        model: model name or weights path; None takes the method's default model.
        nfe: sampler steps; None uses the model card's default.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: seed of the diffusion methods' starting noise.
        adapt: scene adaptation steps (``--adapt``): each image gets its own copy of the model, fine-tuned on it
            (its cloud-free target is never seen), as ``python -m backend run --adapt`` does.
        keep_clear: keep the input where s2cloudless sees no cloud (``run --keep-clear``).
        runtime: ``torch`` or ``onnxruntime`` (``run --runtime``).

    Raises:
        EvaluationError: the device is unavailable (at once), or the model cannot be loaded or an image cannot be
            restored (at the first call).
    """
    # Imported here: ``eval none`` should not import the networks, registry and pipeline it never runs.
    from backend.device import choose_device, configure_threads
    from backend.errors import BackendError
    from backend.job import Job
    from backend.pipeline import run_removal
    from backend.reporter import Reporter
    from backend.worker import load_restorer
    from models.keep_clear import keep_clear as clear_pixels_kept

    try:
        # ONNX Runtime takes its tensors on the CPU (backend.worker.tensor_device), whatever device it runs on.
        torch_device = choose_device(device if runtime == "torch" else "cpu")
    except BackendError as error:
        raise EvaluationError(str(error)) from error
    configure_threads(None)
    loaded: list[tuple[Restorer, ModelCard]] = []

    def predict(cloudy: Path, sar: Path | None) -> np.ndarray:
        output = workdir / f"{cloudy.stem}.{method}.tif"
        try:
            job = Job(
                algorithm=method,
                optical=str(cloudy),
                output=str(output),
                sar=str(sar) if sar is not None else None,
                model=model,
                nfe=nfe,
                device=device,
                seed=seed,
                adapt=adapt,
                keep_clear=keep_clear,
                runtime=runtime,
            )
            if adapt:  # a model per image, adapted to it; its messages go to stderr with the progress lines
                restore, card = adapted_restorer(job, torch_device, Reporter(events=False))
            else:  # the first job loads the model; later ones reuse it
                loaded[:] = loaded or [load_restorer(job, torch_device)]
                restore, card = loaded[0]
            if keep_clear:
                restore = clear_pixels_kept(restore, card.optical_bands, job.cloud_threshold)
            run_removal(job, restore, card, device=torch_device)
            return read_reflectance(output)
        except BackendError as error:
            raise EvaluationError(f"{method} on {cloudy.name}: {error}") from error
        finally:
            output.unlink(missing_ok=True)

    return predict


def adapted_restorer(job: Job, device: torch.device, reporter: Reporter) -> tuple[Restorer, ModelCard]:
    """The job's model adapted to its scene; the model as it is where the scene has no clear area to learn from.

    Scores must cover every image: an image too cloudy (or too small) to adapt on is scored un-adapted, and the
    log says so.
    """
    from backend.scene_adaptation import NothingToLearnError
    from backend.worker import load_restorer

    try:
        return load_restorer(job, device, scene_adapter(job, reporter))
    except NothingToLearnError as error:
        reporter.log("warning", f"{Path(job.optical).name}: {error}; scored without adaptation")
        return load_restorer(job, device)


def scene_adapter(job: Job, reporter: Reporter) -> NetworkHook:
    """The ``load_restorer`` hook that fine-tunes the network on ``job``'s scene (``backend.scene_adaptation``)."""

    def adapt(network: nn.Module, card: ModelCard, reference: nn.Module | None) -> nn.Module:
        from backend.scene_adaptation import adapt_to_scene

        return adapt_to_scene(job, network, card, reporter, lambda: False, reference)

    return adapt


def register(subparsers: Any) -> None:
    """Add the ``eval`` subcommand to the backend's command line (``argparse`` subparsers)."""
    parser = subparsers.add_parser(
        "eval",
        help="score a method and the baselines on a folder of cloudy/target pairs",
        description="Score a method beside the cloudy input and the naive fill on a folder of cloudy/target pairs: "
        "PSNR, SSIM, MAE and SAM per image, overall and by cloud cover; writes report.md, report.json, grid.png.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``eval``."""
    parser.add_argument("method", choices=METHODS, help="the method to score; 'none' scores only the baselines")
    parser.add_argument("--data", type=Path, required=True, help="folder with cloudy/, target/ and optionally sar/")
    parser.add_argument("--model", help="model name or .safetensors path (default: the method's shipped model)")
    parser.add_argument("--nfe", type=int, help="sampler steps (default: the model card's)")
    parser.add_argument("--out", type=Path, help="report folder (default: runs/eval-<method>)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the diffusion methods' starting noise")
    parser.add_argument("--grid-rows", type=int, default=DEFAULT_GRID_ROWS, help="images shown in grid.png")
    parser.add_argument(
        "--keep-clear", action="store_true", help="keep clear pixels as they are, as `run --keep-clear`"
    )
    parser.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch", help="as `run --runtime`")
    parser.add_argument(
        "--adapt", type=int, default=0, help="scene adaptation steps per image, as `run --adapt` (0: off)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``eval`` from parsed arguments; returns the exit code (0 ok, 2 the user must fix something)."""
    out_dir = args.out if args.out is not None else Path("runs") / f"eval-{args.method}"

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="cr-eval-") as scratch, warnings.catch_warnings():
            # Plain (non-geo) TIFFs are fine for scoring; a warning per image would bury the progress lines.
            warnings.simplefilter("ignore", category=NotGeoreferencedWarning)
            predict = (
                None
                if args.method == "none"
                else pipeline_predictor(
                    args.method,
                    Path(scratch),
                    args.model,
                    args.nfe,
                    args.device,
                    args.seed,
                    args.adapt,
                    args.keep_clear,
                    args.runtime,
                )
            )
            report = evaluate_folder(args.data, predict, out_dir, method=args.method, grid_rows=args.grid_rows, log=log)
    except (DatasetError, EvaluationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(render_markdown(report).split("## By cloud cover")[0].rstrip())
    print(f"\nReports written to {out_dir}/ (report.md, report.json, grid.png)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m backend.commands.eval METHOD --data ...``), as ``python -m backend eval``."""
    parser = argparse.ArgumentParser(prog="python -m backend.commands.eval")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
