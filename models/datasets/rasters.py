"""Reading dataset files into arrays on the scales the networks and metrics use.

- Sentinel-2 GeoTIFFs hold reflectance x 10000 (uint16); reflectance = DN / 10000, clipped to [0, 1] as in the DB-CR
  recipe (UnCRtainTS ``process_MS``, default).
- Sentinel-1 GeoTIFFs hold backscatter in dB, [VV, VH]; each band is clipped to its range in ``S1_DB_RANGES`` (VV
  [-25, 0], VH [-32.5, 0]) and scaled linearly onto [0, 1].
- 8-bit images (PNG, JPEG, uint8 TIFF) hold display values; value / 255.

NaN becomes 0 everywhere, so a nodata hole never poisons a loss or a metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import RasterioError

from models.card import S1_BANDS, S1_DB_RANGES

S2_SCALE = 10000.0
EIGHT_BIT_SCALE = 255.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
RASTER_SUFFIXES = (".tif", ".tiff")


class DatasetError(ValueError):
    """Files on disk that do not match the expected layout or format; the message says what to fix."""


def is_eight_bit_image(path: Path) -> bool:
    """Whether a file is a plain 8-bit picture (PNG, JPEG, BMP) rather than a GeoTIFF."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_raw(path: Path) -> np.ndarray:
    """Read any supported file as stored, shape (C, H, W).

    Args:
        path: a GeoTIFF (via rasterio) or an 8-bit picture (via Pillow; an alpha band is dropped, palettes expanded).

    Raises:
        DatasetError: the file is missing or cannot be read.
    """
    if not path.is_file():
        raise DatasetError(f"{path} does not exist")
    try:
        if is_eight_bit_image(path):
            with Image.open(path) as picture:
                mode = "L" if picture.mode in ("L", "I;16", "1") else "RGB"
                array = np.asarray(picture.convert(mode))
            return array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
        with rasterio.open(path) as source:
            return np.asarray(source.read())
    except (OSError, RasterioError) as error:
        raise DatasetError(f"cannot read {path}: {error}") from error


def to_reflectance(raw: np.ndarray, clip: bool = True) -> np.ndarray:
    """Scale stored values to reflectance 0-1 by dtype: uint8 / 255, other integers / 10000, floats as they are.

    Args:
        raw: (C, H, W) values as stored.
        clip: clip to [0, 1] (the DB-CR / UnCRtainTS recipe); metrics on SEN12MS-CR assume it.

    Returns:
        (C, H, W) float32 reflectance, NaN replaced by 0.
    """
    if raw.dtype == np.uint8:
        scaled = raw.astype(np.float32) / EIGHT_BIT_SCALE
    elif np.issubdtype(raw.dtype, np.integer):
        scaled = raw.astype(np.float32) / S2_SCALE
    else:
        # Float rasters are taken as reflectance already (what our own float outputs and .npy fixtures hold).
        scaled = raw.astype(np.float32)
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(scaled, 0.0, 1.0) if clip else scaled


def read_reflectance(path: Path, clip: bool = True) -> np.ndarray:
    """Read an optical file as (C, H, W) float32 reflectance 0-1 (see ``to_reflectance`` for the scale rules)."""
    return to_reflectance(read_raw(path), clip=clip)


def sar_to_unit(db: np.ndarray, bands: Sequence[str] = S1_BANDS) -> np.ndarray:
    """Clip backscatter in dB to each band's range and scale it onto [0, 1] (low end 0, high end 1).

    Args:
        db: (C, H, W) backscatter in dB, bands named by ``bands``.
        bands: the band names, keys of ``S1_DB_RANGES``.

    Returns:
        (C, H, W) float32, 0-1; NaN becomes 0.
    """
    if db.shape[0] != len(bands):
        raise DatasetError(f"the SAR image has {db.shape[0]} bands; expected {len(bands)} ({', '.join(bands)})")
    scaled = np.empty(db.shape, np.float32)
    for index, band in enumerate(bands):
        low, high = S1_DB_RANGES[band]
        scaled[index] = (np.clip(db[index], low, high) - low) / (high - low)
    return np.nan_to_num(scaled, nan=0.0)


def read_sar(path: Path) -> np.ndarray:
    """Read a Sentinel-1 [VV, VH] GeoTIFF in dB as (2, H, W) float32 on [0, 1]."""
    return sar_to_unit(read_raw(path).astype(np.float32))


def list_files(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES + RASTER_SUFFIXES) -> list[Path]:
    """The image files directly in a folder, sorted by name (hidden files and GDAL sidecars left out)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in suffixes
    )
