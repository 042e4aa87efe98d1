"""``python -m backend cloudmask``: s2cloudless cloud probability and mask of a Sentinel-2 raster, block by block.

The job comes from flags or from a JSON file (``--job``, the keys of :class:`backend.cloud_mask_raster.CloudMaskJob`:
what the QGIS plugin writes); flags given on the command line override the file's values. The work is done by
:mod:`backend.cloud_mask_raster`.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from backend.cloud_mask_raster import CloudMaskJob, write_cloud_mask
from backend.errors import BackendError
from backend.job import read_job_file
from backend.protocol import CLOUD_MASK_SETTINGS, EXIT_OK, EXIT_USER_ERROR
from backend.reporter import Reporter


def register(subparsers: Any) -> None:
    """Add the ``cloudmask`` command."""
    parser = subparsers.add_parser("cloudmask", help="s2cloudless cloud probability and mask of a Sentinel-2 raster")
    # SUPPRESS: an option not given is absent, so a --job file's value is not overwritten by a default.
    hide = argparse.SUPPRESS
    settings = CLOUD_MASK_SETTINGS
    parser.add_argument("--optical", default=hide, help="Sentinel-2 L1C (13 bands) or L2A (12 bands) raster")
    parser.add_argument("--probability", default=hide, help="GeoTIFF for the cloud probability (0-1, float32)")
    parser.add_argument("--mask", default=hide, help="GeoTIFF for the cloud mask (1 cloud, 0 clear, 255 no data)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=hide,
        help=f"probability above which a pixel is cloud (default {settings['threshold'].default})",
    )
    parser.add_argument(
        "--average-over",
        dest="average_over",
        type=int,
        default=hide,
        help=f"smoothing radius (px, default {settings['average_over'].default})",
    )
    parser.add_argument(
        "--dilation", type=int, default=hide, help=f"mask dilation radius (px, default {settings['dilation'].default})"
    )
    parser.add_argument(
        "--l2a-offset", dest="l2a_offset", action="store_true", default=hide, help="baseline 04.00+ offset"
    )
    parser.add_argument("--job", dest="job_file", default=None, help="JSON file with the job (same keys as flags)")
    parser.add_argument("--events", action="store_true", help="write JSON-line events on stdout (for the plugin)")
    parser.set_defaults(handler=handle)


def job_from_args(args: argparse.Namespace) -> CloudMaskJob:
    """Build the job from a ``--job`` file (if any) overlaid with the flags given.

    Raises:
        BackendError: the file cannot be read or the job is invalid.
    """
    data: dict[str, Any] = read_job_file(args.job_file) if args.job_file else {}
    for field in dataclasses.fields(CloudMaskJob):
        if hasattr(args, field.name):
            data[field.name] = getattr(args, field.name)
    return CloudMaskJob.from_dict(data)


def handle(args: argparse.Namespace) -> int:
    """Run the command; user errors become an ``error`` event and exit code 2."""
    reporter = Reporter(events=args.events)
    try:
        job = job_from_args(args)
        stats = write_cloud_mask(job, reporter)
    except BackendError as error:
        reporter.emit("error", code=error.code, message=error.message)
        return EXIT_USER_ERROR
    reporter.emit("finished", output=job.mask or job.probability, stats=stats)
    return EXIT_OK
