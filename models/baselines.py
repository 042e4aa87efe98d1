"""The two baselines every cloud-removal result is reported beside.

- the cloudy input itself: what the user has without any method;
- the naive fill: each cloudy pixel replaced by its band's median over the clear pixels of the same image.

A method that does not beat both has learnt nothing worth shipping.
"""

from __future__ import annotations

import numpy as np

from models.cloudmask import cloud_mask

CLOUDY_INPUT = "cloudy input"
NAIVE_FILL = "naive fill"
BASELINES = (CLOUDY_INPUT, NAIVE_FILL)


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


def naive_fill_s2(image: np.ndarray) -> np.ndarray:
    """Naive fill of a Sentinel-2 L1C (13-band) or L2A (12-band) image, clouds found by s2cloudless defaults.

    Args:
        image: (C, H, W) reflectance, 0-1.
    """
    return naive_fill(image, cloud_mask(image))
