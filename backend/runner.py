"""Execute one job: choose the device, load the model, run the pipeline, and answer with protocol events.

This is the part of ``python -m backend run`` that does not parse a command line, so a long-lived worker reading
jobs from stdin can call :func:`execute` the same way.
"""

from __future__ import annotations

import logging
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import torch

from backend.device import choose_device, configure_threads
from backend.errors import BackendError, BadInputError, CancelledError, DeviceError, ModelError
from backend.job import Job, algorithm_label
from backend.pipeline import Restorer, run_removal
from backend.protocol import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_USER_ERROR
from backend.raster_io import open_raster
from backend.reporting import Reporter, forward_logs
from models.card import ModelCard

log = logging.getLogger(__name__)


def default_model(algorithm: str) -> str:
    """The model an algorithm uses when the job names none (the registry's choice).

    Raises:
        BadInputError: the algorithm is unknown or has no shipped model.
    """
    from models.registry import DEFAULT_MODELS

    if algorithm not in DEFAULT_MODELS:
        known = ", ".join(sorted(DEFAULT_MODELS)) or "none"
        raise BadInputError(f"Unknown algorithm {algorithm!r}; available: {known}")
    return DEFAULT_MODELS[algorithm]


def load_restorer(job: Job, device: torch.device) -> tuple[Restorer, ModelCard]:
    """Load the job's model onto ``device`` and wrap it in its method's restorer.

    Raises:
        ModelError: the model cannot be found or read, or belongs to another algorithm.
    """
    from models.methods import make_restorer
    from models.registry import ModelNotFoundError, load_model

    name = job.model or default_model(job.algorithm)
    log.info("Loading model %s", name)
    try:
        network, card = load_model(name)
    except ModelNotFoundError as error:
        raise ModelError(str(error)) from error
    if card.algorithm != job.algorithm:
        raise ModelError(
            f"Model {card.name} is a {algorithm_label(card.algorithm)} model, not {algorithm_label(job.algorithm)}; "
            f"choose a {algorithm_label(job.algorithm)} model or run {card.algorithm}"
        )
    network = network.to(device).eval()
    try:
        restore = make_restorer(network, card, job.nfe or card.default_nfe, job.seed)
    except ValueError as error:
        raise ModelError(f"Model {card.name} cannot run: {error}") from error
    return restore, card


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
    device = choose_device(job.device)
    threads = configure_threads(job.threads)
    # Opening is cheap and loading a model is not: an unreadable input fails before the model loads.
    for path, role in ((job.optical, "S2"), (job.sar, "S1")):
        if path:
            open_raster(path, role).close()
    if stop():
        raise CancelledError()
    restore, card = load_restorer(job, device)
    nfe = job.nfe or card.default_nfe

    def started(tiles: int) -> None:
        reporter.emit("started", algorithm=job.algorithm, tiles=tiles, model=card.name, nfe=nfe, device=str(device))

    def progress(done: int, total: int) -> None:
        reporter.emit("progress", done=done, total=total)

    tags = {
        "CLOUD_REMOVAL_ALGORITHM": job.algorithm,
        "CLOUD_REMOVAL_MODEL": card.name,
        "CLOUD_REMOVAL_NFE": str(nfe),
        "CLOUD_REMOVAL_SEED": str(job.seed),
    }
    try:
        stats = run_removal(
            job, restore, card, device=device, started=started, progress=progress, should_stop=stop, tags=tags
        )
    except RuntimeError as error:
        if device.type == "cuda" and "CUDA" in str(error):
            raise DeviceError(f"The GPU failed while running the model ({error}); try the CPU") from error
        raise
    stats.update(model=card.name, algorithm=job.algorithm, nfe=nfe, device=str(device), threads=threads)
    return stats


@contextmanager
def cancel_on_signals() -> Iterator[threading.Event]:
    """Within the block, SIGTERM/SIGINT ask the run to stop at the next batch; a second one stops it at once.

    Yields:
        The event that is set when a stop was asked for (poll ``event.is_set`` between batches).
    """
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if event.is_set():
            raise KeyboardInterrupt  # second request: unwind now (the partial output is still removed)
        event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
