"""Turn a finished tiled GeoTIFF into a Cloud-Optimized GeoTIFF: a pure step after the run, never inside it.

GDAL's COG driver lays the file out for HTTP range reads (the IFDs first, overviews before full resolution) and
builds the overviews. Full-resolution pixels are copied unchanged; overviews are averages (reflectance), so a
viewer zoomed out sees the mean of the pixels, not every n-th one. The COG is written under
``protocol.partial_path(cog_path)`` and renamed when complete, as every output is.
"""

from __future__ import annotations

import contextlib
import os

import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError  # what rasterio.shutil.copy raises, unwrapped
from rasterio.errors import RasterioError

from backend.errors import OutputError, UnreadableFileError
from backend.protocol import partial_path
from backend.writer import output_error

# The COG driver's own default block side; overviews are made until one block holds the whole image.
COG_BLOCK = 512


def to_cog(tiled_tif: str, cog_path: str, blocksize: int = COG_BLOCK) -> str:
    """Copy ``tiled_tif`` to ``cog_path`` as a COG with overviews, in the source's compression family.

    Args:
        tiled_tif: a finished GeoTIFF (e.g. a run's output); left as it is.
        cog_path: where the COG goes (may be ``tiled_tif`` itself: it is then replaced).
        blocksize: tile side of the COG in pixels (a multiple of 16).

    Returns:
        ``cog_path``.

    Raises:
        UnreadableFileError: ``tiled_tif`` cannot be read.
        OutputError: the COG cannot be written (folder, permissions, disk space).
    """
    try:
        with rasterio.open(tiled_tif) as source:
            compression = source.compression.name.upper() if source.compression else "DEFLATE"
    except RasterioError as error:
        raise UnreadableFileError(f"Cannot read {tiled_tif}: {error}") from error
    partial = partial_path(cog_path)
    options = {
        "COMPRESS": compression,
        "PREDICTOR": "YES",  # horizontal differencing for integers, floating-point prediction for floats
        "BLOCKSIZE": blocksize,
        "OVERVIEWS": "IGNORE_EXISTING",
        "RESAMPLING": "AVERAGE",
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
    }
    try:
        rasterio.shutil.copy(tiled_tif, partial, driver="COG", **options)
        os.replace(partial, cog_path)
    except (RasterioError, CPLE_BaseError, OSError) as error:
        failure: OutputError = output_error(cog_path, error)
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise failure from error
    return cog_path


def is_cog(path: str) -> bool:
    """Whether GDAL reads ``path`` as laid out by its COG driver (``LAYOUT=COG`` in IMAGE_STRUCTURE)."""
    with rasterio.open(path) as dataset:
        return dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
