"""``python -m backend cloudmask``: s2cloudless cloud probability and mask of a Sentinel-2 raster, block by block.

s2cloudless classifies each pixel on its own; only the mask's averaging and dilation look at neighbours, so each
block is read with a halo of :data:`HALO` pixels and cropped back, and the result has no seams at block edges.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
from rasterio.windows import Window

from backend.errors import BackendError
from backend.protocol import EXIT_OK, EXIT_USER_ERROR
from backend.raster_io import OpticalSource
from backend.reporter import Reporter
from backend.writer import block_size, open_output
from models.card import S2_L1C_BANDS

# Wider than s2cloudless's averaging kernel plus the dilation disk at their largest sensible settings.
HALO = 16
MASK_NODATA = 255
PROBABILITY_NODATA = -1.0


def register(subparsers: Any) -> None:
    """Add the ``cloudmask`` command."""
    parser = subparsers.add_parser("cloudmask", help="s2cloudless cloud probability and mask of a Sentinel-2 raster")
    parser.add_argument("--optical", required=True, help="Sentinel-2 L1C (13 bands) or L2A (12 bands) raster")
    parser.add_argument("--probability", default=None, help="GeoTIFF for the cloud probability (0-1, float32)")
    parser.add_argument("--mask", default=None, help="GeoTIFF for the cloud mask (1 cloud, 0 clear, 255 no data)")
    parser.add_argument("--threshold", type=float, default=0.4, help="probability above which a pixel is cloud")
    parser.add_argument("--average-over", dest="average_over", type=int, default=4, help="smoothing radius (px)")
    parser.add_argument("--dilation", type=int, default=2, help="mask dilation radius (px)")
    parser.add_argument("--l2a-offset", dest="l2a_offset", action="store_true", help="baseline 04.00+ offset")
    parser.add_argument("--events", action="store_true", help="write JSON-line events on stdout (for the plugin)")
    parser.set_defaults(handler=handle)


def blocks(height: int, width: int, size: int) -> Iterator[Window]:
    """Windows of at most size x size covering the raster, row by row."""
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def with_halo(window: Window, halo: int, height: int, width: int) -> Window:
    """The window grown by ``halo`` pixels on each side, clamped to the raster."""
    col, row = max(0, int(window.col_off) - halo), max(0, int(window.row_off) - halo)
    right = min(width, int(window.col_off + window.width) + halo)
    bottom = min(height, int(window.row_off + window.height) + halo)
    return Window(col, row, right - col, bottom - row)


def handle(args: argparse.Namespace) -> int:
    """Run the command; user errors become an ``error`` event and exit code 2."""
    reporter = Reporter(events=args.events)
    try:
        if not args.probability and not args.mask:
            raise BackendError("Give --probability, --mask or both: there is nothing to write", code="bad_input")
        if not 0.0 < args.threshold < 1.0:
            raise BackendError("The cloud threshold must lie between 0 and 1", code="bad_input")
        stats = write_cloud_mask(args, reporter)
    except BackendError as error:
        reporter.emit("error", code=error.code, message=error.message)
        return EXIT_USER_ERROR
    reporter.emit("finished", output=args.mask or args.probability, stats=stats)
    return EXIT_OK


def write_cloud_mask(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    """Compute and write the requested rasters; return the cloud fraction and timing."""
    from models.cloudmask import cloud_probability, mask_from_probability

    started = time.time()
    source = OpticalSource(args.optical, S2_L1C_BANDS, 10000.0, args.l2a_offset, "Cloud mask", "s2cloudless")
    with source, ExitStack() as outputs:
        grid = source.grid
        probability_out = mask_out = None
        if args.probability:
            probability_out = outputs.enter_context(
                open_output(args.probability, grid, ["cloud probability"], np.dtype("float32"), PROBABILITY_NODATA)
            )
        if args.mask:
            mask_out = outputs.enter_context(
                open_output(args.mask, grid, ["cloud mask"], np.dtype("uint8"), MASK_NODATA)
            )
        size = max(block_size(grid.width), 512)
        windows = list(blocks(grid.height, grid.width, size))
        reporter.emit("started", algorithm="cloudmask", tiles=len(windows))
        cloudy = valid_count = 0
        for done, window in enumerate(windows, start=1):
            outer = with_halo(window, HALO, grid.height, grid.width)
            reflectance, valid = source.read(outer)
            probability = cloud_probability(reflectance, S2_L1C_BANDS)
            inner = np.s_[
                int(window.row_off - outer.row_off) : int(window.row_off - outer.row_off + window.height),
                int(window.col_off - outer.col_off) : int(window.col_off - outer.col_off + window.width),
            ]
            keep = valid[inner]
            if probability_out is not None:
                values = np.where(keep, probability[inner], PROBABILITY_NODATA).astype(np.float32)
                probability_out.write(values[None], window=window)
            mask = mask_from_probability(probability, args.threshold, args.average_over, args.dilation)[inner]
            if mask_out is not None:
                mask_out.write(np.where(keep, mask, MASK_NODATA).astype(np.uint8)[None], window=window)
            cloudy += int((mask & keep).sum())
            valid_count += int(keep.sum())
            reporter.emit("progress", done=done, total=len(windows))
    fraction = cloudy / valid_count if valid_count else 0.0
    reporter.log("info", f"Cloud cover: {100 * fraction:.1f} % of valid pixels (threshold {args.threshold})")
    return {"cloud_fraction": round(fraction, 4), "seconds": round(time.time() - started, 3)}
