"""Which pixels of a raster hold data: GDAL's rules for nodata values, NaN, internal masks and alpha bands.

A value is valid when it is finite, differs from the nodata value and is not masked; a pixel is valid when any of
its bands is (GDAL's dataset-mask rule). Pure functions over an open rasterio dataset, used by
``backend.raster_io`` to read tiles and to refuse a raster without any data before a model is loaded.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from rasterio.enums import MaskFlags
from rasterio.io import DatasetReader
from rasterio.windows import Window

from backend.errors import BadInputError


def band_validity(
    dataset: DatasetReader, raw: np.ndarray, window: Window, nodata: float | None, has_mask: bool
) -> npt.NDArray[np.bool_]:
    """Which values of ``raw`` (bands, h, w), read from ``window``, hold data: finite, not nodata, not masked."""
    valid = np.isfinite(raw)
    if nodata is not None and not np.isnan(nodata):
        valid &= raw != np.float32(nodata)
    if has_mask:
        valid &= dataset.dataset_mask(window=window, out_shape=raw.shape[1:])[None] > 0
    return valid


def mask_kind(dataset: DatasetReader) -> bool:
    """Whether validity comes from an internal mask or an alpha band (not only from a nodata value)."""
    flags = dataset.mask_flag_enums[0]
    return MaskFlags.per_dataset in flags or MaskFlags.alpha in flags


def has_valid_pixel(dataset: DatasetReader, indexes: list[int], nodata: float | None, has_mask: bool) -> bool:
    """Whether any pixel of ``dataset`` has data in any band of ``indexes``, reading block by block.

    Stops at the first block with a valid pixel, so a raster with data costs one block read; only a raster
    without any costs a full read. Integer bands without nodata or mask are valid everywhere and read nothing.
    """
    if nodata is None and not has_mask and all(np.issubdtype(dataset.dtypes[i - 1], np.integer) for i in indexes):
        return True
    for _, window in dataset.block_windows(1):
        raw = dataset.read(indexes, window=window, out_dtype=np.float32)
        if band_validity(dataset, raw, window, nodata, has_mask).any():
            return True
    return False


def no_data_error(path: str, nodata: float | None) -> BadInputError:
    """The sentence for an optical raster without a single valid pixel."""
    why = f"every pixel equals its nodata value {nodata:g} or is masked" if nodata is not None else "it is all masked"
    return BadInputError(
        f"The optical raster {path} holds no valid pixel (all nodata: {why}); choose a raster with data, or check "
        "its nodata value"
    )
