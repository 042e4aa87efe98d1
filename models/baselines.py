"""The baselines every cloud-removal result is reported beside.

- the cloudy input itself: what the user has without any method;
- the naive fill: each cloudy pixel replaced by its band's median over the clear pixels of the same image;
- the local fill: each cloud filled from the clear ground around it (push-pull, models/cloud_fill.py), what a
  local-fill DB-CR starts from, so its column shows what the network adds;
- with several dates of one place: the least cloudy date, and the per-pixel median over the dates where that pixel
  is clear (the usual compositing a user can do without any network).

A method that does not beat them has learnt nothing worth shipping.
"""

from __future__ import annotations

import numpy as np
import torch

from models.card import S2_L1C_BANDS, S2_L2A_BANDS
from models.cloud_fill import fill_clouds
from models.cloudmask import cloud_mask, default_bands

CLOUDY_INPUT = "cloudy input"
NAIVE_FILL = "naive fill"
LOCAL_FILL = "local fill"
BASELINES = (CLOUDY_INPUT, NAIVE_FILL, LOCAL_FILL)
LEAST_CLOUDY = "least cloudy date"
MASKED_MEDIAN = "masked median"
DATE_BASELINES = (LEAST_CLOUDY, MASKED_MEDIAN)


def cloudy_input(image: np.ndarray) -> np.ndarray:
    """The cloudy image as its own prediction (a copy, so callers may change either).

    Args:
        image: (C, H, W) reflectance, 0-1.
    """
    return np.array(image, copy=True)


def naive_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace each cloudy pixel by its band's median over the clear pixels.

    Args:
        image: (C, H, W) reflectance, 0-1; NaN pixels are ignored by the medians.
        mask: (H, W) bool, True where cloudy.

    Returns:
        (C, H, W) image of the same dtype. When no pixel is clear, each band's median over all pixels is used.
    """
    if mask.shape != image.shape[1:]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape}")
    cloudy = mask.astype(bool)
    filled = np.array(image, copy=True)
    if not cloudy.any():
        return filled
    # A fully cloudy image has no clear pixel to learn from; the whole-image median is the next least bad value.
    source = image[:, ~cloudy] if (~cloudy).any() else image.reshape(image.shape[0], -1)
    medians = np.nanmedian(source, axis=1).astype(image.dtype)
    filled[:, cloudy] = medians[:, np.newaxis]
    return filled


def local_fill_baseline(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill each cloudy pixel from the clear pixels around it (:func:`models.cloud_fill.fill_clouds`).

    Args:
        image: (C, H, W) reflectance, 0-1; NaN pixels count as cloud. A 13- or 12-band Sentinel-2 image is filled
            without its likely cloud shadows, as a local-fill DB-CR fills it.
        mask: (H, W) bool, True where cloudy.

    Returns:
        (C, H, W) image of the same dtype; an image without clear pixels comes back as it is.
    """
    if mask.shape != image.shape[1:]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape}")
    holes = mask.astype(bool) | np.isnan(image).any(axis=0)
    values = torch.from_numpy(np.nan_to_num(image).astype(np.float32))[None]
    sentinel2 = image.shape[0] in (len(S2_L1C_BANDS), len(S2_L2A_BANDS))
    bands = default_bands(image.shape[0]) if sentinel2 else ()
    filled = fill_clouds(values, torch.from_numpy(holes.astype(np.float32))[None, None], bands)[0].numpy()
    return np.where(holes[None], filled, image).astype(image.dtype)


def naive_fill_s2(image: np.ndarray) -> np.ndarray:
    """Naive fill of a Sentinel-2 L1C (13-band) or L2A (12-band) image, clouds found by s2cloudless defaults.

    Args:
        image: (C, H, W) reflectance, 0-1.
    """
    return naive_fill(image, cloud_mask(image))


def _dates(images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 4 or masks.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"dates {images.shape} (T, C, H, W) and masks {masks.shape} (T, H, W) do not match")
    return images, masks.astype(bool)


def least_cloudy(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The date with the fewest cloudy pixels (the earliest of equals), as it is.

    Args:
        images: (T, C, H, W) reflectance 0-1, the dates of one place on one grid.
        masks: (T, H, W) bool, True where that date is cloudy.
    """
    images, masks = _dates(images, masks)
    return np.array(images[int(np.argmin(masks.reshape(len(masks), -1).sum(axis=1)))], copy=True)


def masked_median(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per pixel and band, the median over the dates where that pixel is clear.

    A pixel cloudy on every date takes the median over all dates (the next least bad value), as :func:`naive_fill`
    does for a fully cloudy image.

    Args:
        images: (T, C, H, W) reflectance 0-1.
        masks: (T, H, W) bool, True where that date is cloudy.

    Returns:
        (C, H, W) image of the dates' dtype.
    """
    images, masks = _dates(images, masks)
    clear = ~masks
    never_clear = ~clear.any(axis=0)
    clear[:, never_clear] = True
    stack = np.where(clear[:, None], images, np.nan)
    return np.nanmedian(stack, axis=0).astype(images.dtype)
