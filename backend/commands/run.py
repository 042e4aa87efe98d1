"""``python -m backend run ALGORITHM ...``: remove clouds from one optical raster (what the QGIS plugin runs).

``--optical`` may be repeated for multi-date models (DiffCR): the dates in order, the first giving the output grid.

Flags and the JSON job file (``--job``, what the QGIS plugin writes) use the same keys (see :class:`backend.job.Job`);
flags given on the command line override the file's values. Flags left out take the model card's values (tile size,
NFE) or the defaults. ``--extra-outputs mask,change`` is a shorthand of this command only: it names the extra
outputs ``<output>_cloudmask.tif`` and ``<output>_change.tif`` (``--cloud-mask-output`` and ``--change-output`` name
them as you like).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from backend.errors import BackendError, BadInputError, CancelledError
from backend.job import JOB_FIELDS, RUNTIMES, SAR_SCALES, Job, read_job_file
from backend.protocol import EXIT_CANCELLED, EXIT_USER_ERROR
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
        help=(
            "keep clear pixels as they are, bit for bit; use the model only under clouds (s2cloudless mask, "
            "feathered edge); on by default, --no-keep-clear lets the model rewrite every pixel"
        ),
    )
    parser.add_argument(
        "--cog",
        action="store_true",
        default=hide,
        help="write a Cloud-Optimized GeoTIFF (overviews; full-resolution pixels as the plain GeoTIFF)",
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
        "--cloud-mask-output",
        dest="cloud_mask_output",
        default=hide,
        help="also write the input's cloud mask (s2cloudless: 1 cloud, 0 clear, 255 no data) to this GeoTIFF",
    )
    parser.add_argument(
        "--change-output",
        dest="change_output",
        default=hide,
        help="also write the per-pixel mean absolute reflectance change to this GeoTIFF",
    )
    parser.add_argument(
        "--extra-outputs",
        dest="extra_outputs",
        default=None,
        help="shorthand: mask (<output>_cloudmask.tif) and/or change (<output>_change.tif), e.g. mask,change",
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
    if args.extra_outputs:
        output = data.get("output")
        for field, path in extra_output_paths(args.extra_outputs, output if isinstance(output, str) else "").items():
            data.setdefault(field, path)  # an explicit path wins over the shorthand
    return Job.from_dict(data)


EXTRA_OUTPUT_SUFFIXES = {"mask": ("cloud_mask_output", "_cloudmask"), "change": ("change_output", "_change")}


def extra_output_paths(kinds: str, output: str) -> dict[str, str]:
    """The job's path fields for ``--extra-outputs mask,change``: ``out_cloudmask.tif``, ``out_change.tif``.

    Raises:
        BadInputError: an unknown kind, or no output to put them beside.
    """
    wanted = [kind.strip().lower() for kind in kinds.split(",") if kind.strip()]
    unknown = [kind for kind in wanted if kind not in EXTRA_OUTPUT_SUFFIXES]
    if unknown:
        raise BadInputError(
            f"Unknown extra output {', '.join(unknown)}; choose from {', '.join(EXTRA_OUTPUT_SUFFIXES)}"
        )
    if wanted and not output:
        raise BadInputError("--extra-outputs names files beside the output; give --output too")
    path = Path(output)
    return {
        EXTRA_OUTPUT_SUFFIXES[kind][0]: str(path.with_name(path.stem + EXTRA_OUTPUT_SUFFIXES[kind][1] + ".tif"))
        for kind in wanted
    }


def handle(args: argparse.Namespace) -> int:
    """Run the job; SIGTERM/SIGINT stop it within one network call. Returns the exit code."""
    from backend.cancel import cancel_on_signals
    from backend.worker import execute

    reporter = Reporter(events=args.events)
    try:
        job = job_from_args(args)
    except BackendError as error:
        reporter.emit("error", code=error.code, message=error.message)
        return EXIT_USER_ERROR
    try:
        with cancel_on_signals() as stop:
            return execute(job, reporter, stop.is_set)
    except CancelledError:  # a second signal while the job was already answering
        reporter.emit("cancelled")
        return EXIT_CANCELLED
