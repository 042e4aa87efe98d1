"""Execute one job: choose the device, load the model, run the pipeline, and answer with protocol events.

This is the part of ``python -m backend run`` that does not parse a command line, so a long-lived worker reading
jobs from stdin can call :func:`execute` the same way.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from backend.device import choose_device, configure_threads, default_threads
from backend.errors import BackendError, BadInputError, CancelledError, DeviceError, ModelError
from backend.job import ALGORITHM_LABELS, Job, algorithm_label
from backend.model_cache import cached_network
from backend.pass_outputs import KnownClouds, pass_outputs
from backend.pipeline import Restorer, run_removal
from backend.protocol import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_USER_ERROR
from backend.raster_io import check_has_data, open_raster
from backend.reporter import Reporter, forward_logs
from backend.runtime import Network, ort_device_label, place_network
from models.card import ModelCard
from models.cloud_fill import SceneFill
from models.sampling.types import StepCallback

log = logging.getLogger(__name__)


def default_model(algorithm: str) -> str:
    """The model an algorithm uses when the job names none (the registry's choice).

    Raises:
        BadInputError: the algorithm is unknown or has no shipped model.
    """
    from models.registry import DEFAULT_MODELS

    if algorithm not in DEFAULT_MODELS:
        if algorithm in ALGORITHM_LABELS:
            raise BadInputError(
                f"No {algorithm_label(algorithm)} model is shipped with the plugin yet; give one with --model "
                "(a .safetensors file, e.g. made by python -m backend import-checkpoint)"
            )
        known = ", ".join(sorted(DEFAULT_MODELS)) or "none"
        raise BadInputError(f"Unknown algorithm {algorithm!r}; available: {known}")
    return DEFAULT_MODELS[algorithm]


# (network, card, DE's reference network or None) -> the network to run: scene adaptation.
NetworkHook = Callable[[torch.nn.Module, ModelCard, "torch.nn.Module | None"], torch.nn.Module]


def load_restorer(
    job: Job,
    device: torch.device,
    adapt: NetworkHook | None = None,
    callback: StepCallback | None = None,
    scene_fill: bool = True,
) -> tuple[Restorer, ModelCard]:
    """Load the job's model (and DE's reference network) for the job's runtime and wrap it in its method's restorer.

    Args:
        job: the job (model, NFE, seed, runtime, tile size, device, threads).
        device: where the torch runtime puts the network; the restorer receives its tensors there (the
            ``onnxruntime`` runtime takes them on the CPU, see :func:`tensor_device`).
        adapt: applied to the network (on the CPU, in torch) before it is placed: scene adaptation.
        callback: called by the sampler after every network evaluation; raising there stops the run.
        scene_fill: read the job's scene for a local-fill DB-CR's or DE's coarse fill (``backend.scene_fill``);
            False for a restorer of tiles that belong to no raster (the network-only benchmark).

    Raises:
        ModelError: the model cannot be found, read or exported, or belongs to another algorithm.
        DeviceError: ONNX Runtime was asked for CUDA and has none.
    """
    from models.restorers import DIFFCR_MIN_NFE, make_restorer

    name = job.model or default_model(job.algorithm)
    log.info("Loading model %s", name)
    network, card, weights = load_network(name)
    if card.algorithm != job.algorithm:
        raise ModelError(
            f"Model {card.name} is a {algorithm_label(card.algorithm)} model, not {algorithm_label(job.algorithm)}; "
            f"choose a {algorithm_label(job.algorithm)} model or run {card.algorithm}"
        )
    nfe = job.nfe or card.default_nfe
    if card.algorithm == "diffcr" and nfe < DIFFCR_MIN_NFE:
        raise BadInputError(
            f"DiffCR needs at least {DIFFCR_MIN_NFE} steps (NFE): its solver ends with a denoising step; "
            f"NFE {nfe} leaves no solver step"
        )
    reference_model = load_reference(card, weights)
    if adapt is not None:
        network = adapt(network, card, reference_model[0] if reference_model else None)
    tile, _ = job.tiling(card.tile_size)
    threads = job.threads or default_threads()

    def place(net: torch.nn.Module, net_card: ModelCard, path: Path | None) -> Network:
        return place_network(
            net, net_card, path, runtime=job.runtime, tile=tile, torch_device=device, device=job.device, threads=threads
        )

    reference = place(*reference_model) if reference_model else None
    try:
        # An adapted network has no file of its own: the ONNX graph must not come from the original's cache.
        placed = place(network, card, None if adapt else weights)
        scene = scene_background(job, card) if scene_fill else None
        restore = make_restorer(placed, card, nfe, job.seed, reference, callback, scene, job.cloud_threshold)
    except ValueError as error:
        raise ModelError(f"Model {card.name} cannot run: {error}") from error
    return restore, card


def scene_background(job: Job, card: ModelCard) -> SceneFill | None:
    """The scene's coarse fill for a DB-CR or DE model with a local-fill start (``backend.scene_fill``), else None."""
    if card.algorithm not in ("dbcr", "de") or card.bridge_start != "local_fill":
        return None
    from backend.scene_fill import read_scene_fill

    return read_scene_fill(job, card)


def load_reference(card: ModelCard, weights: Path) -> tuple[torch.nn.Module, ModelCard, Path] | None:
    """DE's reference network (the one its card names), or None for the other methods.

    Raises:
        ModelError: the named model cannot be found or is not a DE reference network.
    """
    if card.algorithm != "de":
        return None
    network, reference_card, path = load_network(reference_model_name(card, weights))
    if reference_card.algorithm != "de-reference":
        raise ModelError(
            f"DE model {card.name} names {reference_card.name} as its reference network, but that is a "
            f"{algorithm_label(reference_card.algorithm)} model; import DE's reference network (MemoryNet)"
        )
    return network, reference_card, path


def tensor_device(job: Job) -> torch.device:
    """Where the pipeline puts the restorer's tensors: the torch device, or the CPU for ONNX Runtime.

    Raises:
        DeviceError: the torch device is not available.
    """
    return choose_device(job.device) if job.runtime == "torch" else torch.device("cpu")


@cached_network
def load_network(name: str) -> tuple[torch.nn.Module, ModelCard, Path]:
    """Load a model by name or path: its network (CPU), card and weights file.

    Raises:
        ModelError: the model cannot be found or read.
    """
    from models.registry import ModelNotFoundError, load_model, resolve_weights

    try:
        weights = resolve_weights(name)
        network, card = load_model(str(weights))
    except ModelNotFoundError as error:
        raise ModelError(str(error)) from error
    return network, card, weights


def reference_model_name(card: ModelCard, weights: Path) -> str:
    """DE's reference network: the card's ``reference_model``, a name, a path, or a file beside the DE weights.

    Raises:
        ModelError: the card names none.
    """
    name = card.reference_model
    if not name:
        raise ModelError(
            f"DE model {card.name} names no reference network; import one (python -m backend import-checkpoint "
            "de-reference-official ...) and import the DE weights again with --reference"
        )
    beside = weights.parent / str(name)
    for candidate in (beside, beside.with_name(f"{beside.name}.safetensors")):
        if not Path(str(name)).is_absolute() and candidate.is_file():
            return str(candidate)
    return str(name)


def execute(job: Job, reporter: Reporter, should_stop: Callable[[], bool] | None = None) -> int:
    """Run a job, report it through ``reporter``, and return the process exit code (see backend.protocol)."""
    stop = should_stop or (lambda: False)
    try:
        with forward_logs(reporter):
            stats = _execute(job, reporter, stop)
    except (CancelledError, KeyboardInterrupt):
        reporter.emit("cancelled")
        return EXIT_CANCELLED
    except BackendError as error:
        reporter.emit("error", code=error.code, message=error.message)
        return EXIT_USER_ERROR
    except torch.cuda.OutOfMemoryError:
        message = f"The GPU ran out of memory; lower the batch size (now {job.batch}) or the tile size, or use the CPU"
        reporter.emit("error", code="out_of_memory", message=message)
        return EXIT_USER_ERROR
    except MemoryError:
        message = f"Out of memory; lower the batch size (now {job.batch}) or the tile size"
        reporter.emit("error", code="out_of_memory", message=message)
        return EXIT_USER_ERROR
    except Exception as error:
        traceback.print_exc()  # stderr: a bug, the traceback is what a developer needs
        message = f"Internal error ({type(error).__name__}: {error}); please report it with the log"
        reporter.emit("error", code="internal", message=message)
        return EXIT_INTERNAL
    reporter.emit("finished", output=job.output, stats=stats)
    return EXIT_OK


def _execute(job: Job, reporter: Reporter, stop: Callable[[], bool]) -> dict[str, Any]:
    device = tensor_device(job)
    threads = configure_threads(job.threads)
    # Opening is cheap and loading a model is not: an unreadable input fails before the model loads.
    for path, role in (*((path, "optical") for path in job.optical_paths), (job.sar, "S1")):
        if path:
            open_raster(path, role).close()
    check_has_data(job.optical_paths[0])  # an all-nodata raster fails here too, not after the model has loaded
    if stop():
        raise CancelledError()
    scene_clouds: list[KnownClouds] = []

    def adapt(network: torch.nn.Module, card: ModelCard, reference: torch.nn.Module | None) -> torch.nn.Module:
        from backend.scene_adaptation import adapt_to_scene

        return adapt_to_scene(job, network, card, reporter, stop, reference, scene_clouds.append)

    def cancel_between_steps(done: int, total: int) -> None:
        if stop():  # within one network call of a cancel, even inside a long batch
            raise CancelledError()

    restore, card = load_restorer(job, device, adapt if job.adapt else None, cancel_between_steps)
    outputs = pass_outputs(job, card, scene_clouds[0] if scene_clouds else None)
    nfe = job.nfe or card.default_nfe
    where = str(device) if job.runtime == "torch" else ort_device_label(job.device)

    def started(tiles: int) -> None:
        reporter.emit("started", algorithm=job.algorithm, tiles=tiles, model=card.name, nfe=nfe, device=where)

    def progress(done: int, total: int) -> None:
        reporter.emit("progress", done=done, total=total)

    tags = run_tags(job, card)
    try:
        stats = run_removal(
            job,
            restore,
            card,
            device=device,
            started=started,
            progress=progress,
            should_stop=stop,
            tags=tags,
            outputs=outputs,
        )
    except RuntimeError as error:
        if device.type == "cuda" and "CUDA" in str(error):
            raise DeviceError(f"The GPU failed while running the model ({error}); try the CPU") from error
        raise
    if job.cog:
        from backend.cog import to_cog

        reporter.log("info", "Writing the Cloud-Optimized GeoTIFF (overviews)")
        to_cog(job.output, job.output)
        stats["cog"] = True
    stats.update(model=card.name, algorithm=job.algorithm, nfe=nfe, device=where, threads=threads, runtime=job.runtime)
    if job.keep_clear:
        cover = 100 * stats.get("cloud_fraction", 0.0)
        reporter.log("info", f"Cloud cover: {cover:.1f} %; clear pixels were kept as they are")
    for kind, path in stats.get("extra_outputs", {}).items():
        reporter.log("info", f"Wrote the {kind} output {path}")
    return stats


def run_tags(job: Job, card: ModelCard) -> dict[str, str]:
    """The metadata a run writes into its output: what made it (a rerun of ``batch`` skips outputs that match)."""
    return {
        "CLOUD_REMOVAL_ALGORITHM": job.algorithm,
        "CLOUD_REMOVAL_MODEL": card.name,
        "CLOUD_REMOVAL_NFE": str(job.nfe or card.default_nfe),
        "CLOUD_REMOVAL_SEED": str(job.seed),
        "CLOUD_REMOVAL_RUNTIME": job.runtime,
        "CLOUD_REMOVAL_KEEP_CLEAR": str(job.keep_clear).lower(),
    }
