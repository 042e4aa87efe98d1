"""A before/after PNG: true colour (B4, B3, B2) of the input and the output, side by side, one shared stretch.

The stretch clips each channel at its 2nd and 98th percentile over the valid pixels of both images together, so
the two halves are directly comparable (a per-image stretch would brighten a cloud-free result and hide changes).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from backend.bands import S2_L1C_BANDS, S2_L2A_BANDS, parse_s2_band
from backend.errors import BackendError, BadInputError, OutputError
from backend.protocol import EXIT_OK, EXIT_USER_ERROR
from backend.raster_io import open_raster
from models.card import RGB_BANDS

STRETCH_PERCENTILES = (2.0, 98.0)
GAP_PX = 8


def rgb_indexes(descriptions: tuple[str | None, ...]) -> list[int]:
    """1-based bands holding B4, B3, B2: by description, else by the standard 13- or 12-band order (RGB: 1, 2, 3).

    Raises:
        BadInputError: the raster has no recognisable red, green and blue bands.
    """
    names = [parse_s2_band(description) for description in descriptions]
    if all(band in names for band in RGB_BANDS):
        return [names.index(band) + 1 for band in RGB_BANDS]
    if len(descriptions) in (3, 4):  # RGB or RGB + NIR (DE's imagery): red, green, blue come first
        return [1, 2, 3]
    standard = {13: S2_L1C_BANDS, 12: S2_L2A_BANDS}.get(len(descriptions))
    if standard is None:
        raise BadInputError(
            f"Cannot find bands B4, B3, B2 in a raster of {len(descriptions)} bands; the preview needs a "
            "Sentinel-2 L1C (13 bands) or L2A (12 bands) image, or an RGB (+ NIR) one"
        )
    return [standard.index(band) + 1 for band in RGB_BANDS]


def read_rgb(path: str, shape: tuple[int, int] | None = None, max_size: int = 1024) -> np.ma.MaskedArray:
    """Read B4, B3, B2 decimated to ``shape`` (or to at most ``max_size`` pixels a side) as a masked float array."""
    with open_raster(path, "preview") as dataset:
        if shape is None:
            factor = max(1.0, max(dataset.height, dataset.width) / max_size)
            shape = (max(1, math.ceil(dataset.height / factor)), max(1, math.ceil(dataset.width / factor)))
        indexes = rgb_indexes(dataset.descriptions)
        data = dataset.read(indexes, out_shape=(3, *shape), masked=True, resampling=Resampling.average)
    masked: np.ma.MaskedArray = np.ma.masked_invalid(data.astype(np.float32))
    return masked


def stretch_limits(*images: np.ma.MaskedArray) -> np.ndarray:
    """(3, 2) low/high per channel over the valid pixels of all ``images``."""
    limits = np.zeros((3, 2), dtype=np.float32)
    for channel in range(3):
        values = np.concatenate([image[channel].compressed() for image in images])
        if values.size:
            limits[channel] = np.percentile(values, STRETCH_PERCENTILES)
    limits[:, 1] = np.maximum(limits[:, 1], limits[:, 0] + 1e-6)
    return limits


def to_uint8(image: np.ma.MaskedArray, limits: np.ndarray) -> np.ndarray:
    """Stretch (3, h, w) to 0-255; invalid pixels black."""
    low, high = limits[:, :1, None], limits[:, 1:, None]
    scaled = np.clip((image.filled(np.nan) - low) / (high - low), 0.0, 1.0)
    return np.nan_to_num(scaled * 255.0, nan=0.0).round().astype(np.uint8)


def write_preview(before: str, after: str, png: str, max_size: int = 1024) -> tuple[int, int]:
    """Write the side-by-side PNG; return its (height, width).

    Raises:
        BackendError: a raster cannot be read or has no red, green and blue bands.
    """
    left = read_rgb(before, max_size=max_size)
    right = read_rgb(after, shape=left.shape[1:])
    limits = stretch_limits(left, right)
    height, width = left.shape[1:]
    canvas = np.full((3, height, 2 * width + GAP_PX), 255, dtype=np.uint8)
    canvas[:, :, :width] = to_uint8(left, limits)
    canvas[:, :, width + GAP_PX :] = to_uint8(right, limits)
    profile: dict[str, Any] = {"driver": "PNG", "width": canvas.shape[2], "height": height, "count": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG for people, not a map layer
        try:
            with rasterio.open(png, "w", dtype="uint8", **profile) as dataset:
                dataset.write(canvas)
        except RasterioError as error:
            raise OutputError(f"Cannot write {png}: {error}") from error
    return height, canvas.shape[2]


def register(subparsers: Any) -> None:
    """Add the ``preview`` command."""
    parser = subparsers.add_parser("preview", help="write a before/after true-colour PNG")
    parser.add_argument("--before", required=True, help="the cloudy Sentinel-2 raster")
    parser.add_argument("--after", required=True, help="the restored raster")
    parser.add_argument("--png", required=True, help="PNG file to write")
    parser.add_argument("--max-size", type=int, default=1024, help="longest side of each half (pixels)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Write the PNG; errors are sentences on stderr."""
    try:
        height, width = write_preview(args.before, args.after, args.png, args.max_size)
    except BackendError as error:
        print(f"Error: {error.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"Wrote {args.png} ({width} x {height})", file=sys.stderr)
    return EXIT_OK
