"""``python -m backend eval``: score a method on a folder of cloudy/target pairs, beside the baselines.

The scoring (regions of the cloud mask, baselines, means, bins) is ``backend.evaluation``; this command builds the
method's ``predict`` from the backend's own pipeline (``backend.pipeline.run_removal``, what ``python -m backend run``
runs for the QGIS plugin), written to a GeoTIFF and read back, so the scores measure exactly what users get: band
mapping, scaling, tiling, blending and writing included. Markdown, JSON and a PNG grid of examples go to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.errors import NotGeoreferencedWarning

from backend.evaluation import (
    COVER_BINS,
    DEFAULT_GRID_ROWS,
    EvaluationError,
    Predict,
    cover_bin,
    evaluate_folder,
    measure_clouds,
)
from backend.evaluation_report import render_markdown
from backend.protocol import EXIT_OK, EXIT_USER_ERROR
from models.datasets.rasters import DatasetError, read_reflectance

__all__ = ["COVER_BINS", "EvaluationError", "cover_bin", "evaluate_folder", "main", "measure_clouds", "run"]

if TYPE_CHECKING:  # the networks are imported only when a method runs (``eval none`` needs none of them)
    import torch
    from torch import nn

    from backend.job import Job
    from backend.pipeline import Restorer
    from backend.reporter import Reporter
    from backend.worker import NetworkHook
    from models.card import ModelCard

METHODS = ("none", "dbcr", "diffcr", "de")


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

    The network is loaded once (``backend.worker.load_restorer``, as ``python -m backend run`` loads it); each image
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
    from backend.pass_outputs import pass_outputs
    from backend.pipeline import run_removal
    from backend.reporter import Reporter
    from backend.worker import load_restorer

    try:
        # ONNX Runtime takes its tensors on the CPU (backend.worker.tensor_device), whatever device it runs on.
        torch_device = choose_device(device if runtime == "torch" else "cpu")
    except BackendError as error:
        raise EvaluationError(str(error)) from error
    configure_threads(None)

    def predict(cloudy: Path, sar: Path | None, extra: Sequence[Path] = ()) -> np.ndarray:
        output = workdir / f"{cloudy.stem}.{method}.tif"
        if method == "dbcr":  # one date: a folder's further dates only feed the date baselines
            extra = ()
        try:
            job = Job(
                algorithm=method,
                optical=str(cloudy),
                extra_optical=tuple(str(path) for path in extra),
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
            else:  # the network is loaded once (load_network caches it); the restorer is the image's own
                restore, card = load_restorer(job, torch_device)
            # keep-clear (the job's) in the same pass as a run: one cloud mask per tile, the first date kept
            run_removal(job, restore, card, device=torch_device, outputs=pass_outputs(job, card))
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
        description="Score a method beside the cloudy input and the naive fill (and, with date2/, date3/, the least "
        "cloudy date and the masked median) on a folder of cloudy/target pairs: PSNR, SSIM, MAE and SAM per image over "
        "every pixel, under the cloud and on clear ground, overall and by cloud cover; writes report.md, report.json, "
        "grid.png.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``eval``."""
    parser.add_argument("method", choices=METHODS, help="the method to score; 'none' scores only the baselines")
    parser.add_argument(
        "--data", type=Path, required=True, help="folder with cloudy/, target/, optionally sar/, mask/, date2/, ..."
    )
    parser.add_argument("--model", help="model name or .safetensors path (default: the method's shipped model)")
    parser.add_argument("--nfe", type=int, help="sampler steps (default: the model card's)")
    parser.add_argument("--out", type=Path, help="report folder (default: runs/eval-<method>)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the diffusion methods' starting noise")
    parser.add_argument("--grid-rows", type=int, default=DEFAULT_GRID_ROWS, help="images shown in grid.png")
    parser.add_argument(
        "--keep-clear",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep clear pixels as they are, as `run` does by default (--no-keep-clear: the model's every pixel)",
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
