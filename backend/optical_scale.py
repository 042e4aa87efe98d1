"""The digital number (DN) that means reflectance 1.0 for an optical input: the model card's, or one fitted to the data.

Sentinel-2 models read DN / 10000 and 8-bit models (DE on RICE) DN / 255, as their cards say. An 8-bit model fed
wider data (16-bit, float) gets a scale fitted to the image instead (see :func:`choose_scale`); the user can also
set the scale. The output is written back with the same scale, so it always stays on the input's scale.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from rasterio.enums import Resampling
from rasterio.io import DatasetReader

from backend.errors import BadInputError

log = logging.getLogger(__name__)

# Models trained on 8-bit images (DE on RICE) have this optical_scale; wider data is scaled by AUTO_SCALE_PERCENTILE.
EIGHT_BIT_SCALE = 255.0
AUTO_SCALE_PERCENTILE = 99.9
_SAMPLE_CELLS = 1024


def dtype_range(dtype: np.dtype) -> tuple[float, float]:
    """(lowest, highest) value of a numpy data type."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    finfo = np.finfo(dtype)
    return float(finfo.min), float(finfo.max)


def choose_scale(dataset: DatasetReader, indexes: list[int], card_scale: float, explicit: float | None) -> float:
    """The DN that means reflectance 1.0 for this input.

    ``explicit`` when given; else the card's ``optical_scale``, except for models trained on 8-bit images
    (scale 255) fed wider data (16-bit, float): those are scaled by the :data:`AUTO_SCALE_PERCENTILE` th
    percentile of their valid values (all bands, on an overview of at most 1024 pixels a side), so that the
    brightest pixels (clouds) sit near 1.0 as they do in 8-bit images. Dividing 16-bit data by 65535 would show
    the model a near-black image; the output uses the same scale, so it stays on the input's scale either way.

    Raises:
        BadInputError: ``explicit`` is not positive.
    """
    if explicit is not None:
        if not explicit > 0:
            raise BadInputError(f"Optical scale must be a positive number of DN, not {explicit}")
        return float(explicit)
    dtype = np.dtype(dataset.dtypes[0])
    if card_scale != EIGHT_BIT_SCALE or dtype == np.uint8:
        return float(card_scale)
    factor = max(1.0, max(dataset.width, dataset.height) / _SAMPLE_CELLS)
    shape = (len(indexes), max(1, math.ceil(dataset.height / factor)), max(1, math.ceil(dataset.width / factor)))
    sample = dataset.read(indexes, out_shape=shape, resampling=Resampling.nearest, out_dtype=np.float32)
    keep = np.isfinite(sample)
    if dataset.nodata is not None and not np.isnan(dataset.nodata):
        keep &= sample != np.float32(dataset.nodata)
    values = sample[keep]
    scale = float(np.percentile(values, AUTO_SCALE_PERCENTILE)) if values.size else 0.0
    if not scale > 0:
        scale = dtype_range(dtype)[1] if np.issubdtype(dtype, np.integer) else 1.0
    log.info(
        "The model was trained on 8-bit images and this image is %s: %.6g DN (its %gth percentile) is read as the "
        "8-bit 255; set the optical scale to choose another",
        dtype,
        scale,
        AUTO_SCALE_PERCENTILE,
    )
    return scale
