"""``python -m backend run ALGORITHM ...``: remove clouds from one optical raster (what the QGIS plugin runs).

``--optical`` may be repeated for multi-date models (DiffCR): the dates in order, the first giving the output grid.

Flags and the JSON job file (``--job``) use the same keys (see :class:`backend.job.Job`); flags given on the command
line override the file's values. Flags left out take the model card's values (tile size, NFE) or the defaults.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from backend.errors import BackendError, BadInputError, UnreadableFileError
from backend.job import JOB_FIELDS, RUNTIMES, SAR_SCALES, Job
from backend.protocol import EXIT_USER_ERROR, partial_path
from backend.reporter import Reporter


def register(subparsers: Any) -> None:
    """Add the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        help="remove clouds from an optical raster",
        description="Remove clouds from one optical raster (Sentinel-2, or RGB for DE), tile by tile, and write a "
        "GeoTIFF on its grid.",
    )
    # SUPPRESS: an option not given is absent, so a --job file's value is not overwritten by a default.
    hide = argparse.SUPPRESS
    parser.add_argument("algorithm", nargs="?", default=hide, help="the method: dbcr, diffcr or de")
    parser.add_argument(
        "--optical",
        action="append",
        default=hide,
        help="optical raster: Sentinel-2 L1C (13 bands) or L2A (12 bands), or RGB (+ NIR) for DE; repeat it for "
        "the cloudy dates of a multi-date model (DiffCR), the first giving the output grid",
    )
    parser.add_argument("--sar", default=hide, help="Sentinel-1 raster with VV and VH (dB or linear)")
    parser.add_argument("--output", default=hide, help="GeoTIFF to write (.tif); its folder must exist")
    parser.add_argument("--model", default=hide, help="model name or .safetensors file (default: the shipped one)")
    parser.add_argument("--nfe", type=int, default=hide, help="sampler steps, 1-50 (default: the model card's)")
    parser.add_argument("--device", default=hide, help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--tile-size", dest="tile_size", type=int, default=hide, help="tile side in pixels")
    parser.add_argument("--overlap", type=int, default=hide, help="pixels shared by tiles (default: tile/4)")
    parser.add_argument("--batch", type=int, default=hide, help="tiles per network call (default 4)")
    parser.add_argument(
        "--l2a-offset",
        dest="l2a_offset",
        action=argparse.BooleanOptionalAction,
        default=hide,
        help="subtract the 1000 DN offset of Sentinel-2 processing baseline 04.00 and later",
    )
    parser.add_argument(
        "--sar-scale", dest="sar_scale", choices=SAR_SCALES, default=hide, help="S1 values: auto (default), db, linear"
    )
    parser.add_argument(
        "--sar-bands", dest="sar_bands", default=hide, help="S1 band numbers of VV,VH, e.g. 2,1 (default: 1,2)"
    )
    parser.add_argument("--seed", type=int, default=hide, help="seed of the diffusion methods' noise (default 0)")
    parser.add_argument("--threads", type=int, default=hide, help="CPU threads (default: all cores but one)")
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=hide,
        help="advanced: torch (default) or onnxruntime (the network is exported to ONNX once per tile size, cached)",
    )
    parser.add_argument(
        "--optical-scale",
        dest="optical_scale",
        type=float,
        default=hide,
        help="advanced: DN that means reflectance 1.0 (default: the model card's, e.g. 10000 for Sentinel-2)",
    )
    parser.add_argument(
        "--keep-clear",
        dest="keep_clear",
        action=argparse.BooleanOptionalAction,
        default=hide,
        help="keep clear pixels as they are; use the model only under clouds (s2cloudless mask, feathered edge)",
    )
    parser.add_argument(
        "--cloud-threshold",
        dest="cloud_threshold",
        type=float,
        default=hide,
        help="cloud probability above which --keep-clear treats a pixel as cloud (default 0.4)",
    )
    parser.add_argument(
        "--adapt", type=int, default=hide, help="fine-tune the model on this scene for N steps first (0 = off)"
    )
    parser.add_argument(
        "--save-adapted", dest="save_adapted", default=hide, help="keep the adapted weights in this .safetensors file"
    )
    parser.add_argument(
        "--extra-outputs",
        dest="extra_outputs",
        default=hide,
        help="also write mask (<output>_cloudmask.tif, s2cloudless) and/or change (<output>_change.tif): mask,change",
    )
    parser.add_argument("--job", dest="job_file", default=None, help="JSON file with the job (same keys as flags)")
    parser.add_argument("--events", action="store_true", help="write JSON-line events on stdout (for the plugin)")
    parser.set_defaults(handler=handle)


def job_from_args(args: argparse.Namespace) -> Job:
    """Build the job from a ``--job`` file (if any) overlaid with the flags given.

    Raises:
        BackendError: the file cannot be read or the job is invalid.
    """
    data: dict[str, Any] = {}
    if args.job_file:
        data.update(read_job_file(args.job_file))
    if hasattr(args, "optical"):
        data.pop("extra_optical", None)  # --optical flags replace every date of the file
    for name in JOB_FIELDS:
        if hasattr(args, name):
            data[name] = getattr(args, name)
    return Job.from_dict(data)


def read_job_file(path: str) -> dict[str, Any]:
    """Read a JSON job object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise UnreadableFileError(f"Cannot read job file {path}: {error.strerror or error}") from error
    except json.JSONDecodeError as error:
        raise BadInputError(f"Job file {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadInputError(f"Job file {path} must hold one JSON object")
    return data


def handle(args: argparse.Namespace) -> int:
    """Run the job; SIGTERM/SIGINT stop it at the next batch. Returns the exit code."""
    from backend.worker import cancel_on_signals, execute

    reporter = Reporter(events=args.events)
    try:
        job = job_from_args(args)
    except BackendError as error:
        reporter.emit("error", code=error.code, message=error.message)
        return EXIT_USER_ERROR
    with cancel_on_signals(partial_path(job.output), lambda: reporter.emit("cancelled")) as stop:
        return execute(job, reporter, stop.is_set)
