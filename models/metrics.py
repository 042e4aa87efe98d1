"""Image-quality metrics for cloud removal, as used on SEN12MS-CR (UnCRtainTS ``metrics.py``).

Every metric compares one prediction with one target, both (C, H, W) reflectance on the 0-1 scale, over all bands and
all pixels; :func:`region_metrics` adds the same metrics over the cloudy and the clear pixels of a cloud mask (what a
method does under the cloud, and what it does to ground that was already clear). Averages over a test set are the
mean of per-image values, as UnCRtainTS reports them.

SSIM follows the usual scikit-image call (11x11 Gaussian window, sigma 1.5, data range 1). It differs slightly from
UnCRtainTS's pytorch_ssim at the image border: scikit-image leaves out the 5-pixel rim, pytorch_ssim zero-pads it.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

METRIC_NAMES = ("psnr", "ssim", "mae", "sam")
# Where a score is taken: every pixel, the pixels of the cloud mask, the others.
REGIONS = ("all", "cloud", "clear")
# Whether a larger value is better, for reports.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "mae": False, "sam": False, "rmse": False}


def _pair(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 (sums over millions of pixels lose digits in float32), checked for equal shape."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    if prediction.ndim != 3:
        raise ValueError(f"expected (C, H, W) images, got shape {prediction.shape}")
    return prediction.astype(np.float64, copy=False), target.astype(np.float64, copy=False)


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error over all bands and pixels (reflectance units)."""
    pred, true = _pair(prediction, target)
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def psnr(prediction: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: 20·log10(data_range / RMSE) over all bands and pixels.

    Returns:
        PSNR in dB; ``math.inf`` when the images are identical.
    """
    error = rmse(prediction, target)
    return math.inf if error == 0.0 else 20.0 * math.log10(data_range / error)


def ssim(prediction: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity, mean over bands and pixels (11x11 Gaussian window, sigma 1.5).

    Images must be at least 11 pixels high and wide.
    """
    return ssim_map(prediction, target, data_range)[0]


def ssim_map(prediction: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> tuple[float, np.ndarray]:
    """SSIM (as :func:`ssim`) and its (H, W) map, the per-pixel value averaged over bands, NaN on the 5-pixel rim.

    scikit-image's mean leaves out the rim its window cannot cover; the map marks it NaN so a region's mean does too.
    """
    pred, true = _pair(prediction, target)
    value, full = structural_similarity(
        true,
        pred,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=0,
        full=True,
    )
    per_pixel = np.asarray(full, dtype=np.float64).mean(axis=0)
    pad = (11 - 1) // 2  # the rim of the 11x11 window (skimage's crop)
    rim = np.ones(per_pixel.shape, bool)
    rim[pad : per_pixel.shape[0] - pad, pad : per_pixel.shape[1] - pad] = False
    per_pixel[rim] = math.nan
    return float(value), per_pixel


def mae(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over all bands and pixels (reflectance units)."""
    pred, true = _pair(prediction, target)
    return float(np.mean(np.abs(pred - true)))


def sam(prediction: np.ndarray, target: np.ndarray) -> float:
    """Spectral angle mapper in degrees, the mean over pixels of the angle between the two spectra.

    Pixels where either spectrum is all zero have no angle and are left out (UnCRtainTS gets NaN there and skips
    it when averaging).

    Returns:
        The mean angle in degrees, 0-180; NaN when no pixel has an angle.
    """
    pred, true = _pair(prediction, target)
    dot = np.sum(pred * true, axis=0)
    norms = np.linalg.norm(pred, axis=0) * np.linalg.norm(true, axis=0)
    valid = norms > 0
    if not np.any(valid):
        return math.nan
    cosine = np.clip(dot[valid] / norms[valid], -1.0, 1.0)
    return float(np.degrees(np.mean(np.arccos(cosine))))


def all_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """PSNR (dB), SSIM, MAE (reflectance) and SAM (degrees) of one image, keyed by ``METRIC_NAMES``."""
    return {
        "psnr": psnr(prediction, target),
        "ssim": ssim(prediction, target),
        "mae": mae(prediction, target),
        "sam": sam(prediction, target),
    }


def _masked(
    prediction: np.ndarray, target: np.ndarray, region: np.ndarray, ssim_pixels: np.ndarray
) -> dict[str, float]:
    """The four metrics over the pixels of ``region`` (H, W) bool; NaN everywhere when it holds no pixel."""
    if not region.any():
        return dict.fromkeys(METRIC_NAMES, math.nan)
    pred, true = prediction[:, region], target[:, region]  # (C, N)
    error = float(np.sqrt(np.mean((pred - true) ** 2)))
    inside = ssim_pixels[region]
    inside = inside[~np.isnan(inside)]
    return {
        "psnr": math.inf if error == 0.0 else -20.0 * math.log10(error),
        "ssim": float(inside.mean()) if inside.size else math.nan,
        "mae": float(np.mean(np.abs(pred - true))),
        "sam": sam(pred[:, :, None], true[:, :, None]),
    }


def region_metrics(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, dict[str, float]]:
    """The metrics over every pixel, the cloudy pixels and the clear ones.

    PSNR, MAE and SAM are taken over the region's pixels (all bands); SSIM is the mean of its per-pixel map over
    the region (the window still sees the pixels around it, so a region's edge borrows from its neighbours).

    Args:
        prediction: (C, H, W) reflectance 0-1.
        target: (C, H, W) reflectance 0-1.
        mask: (H, W) bool, True where the cloudy input is cloudy.

    Returns:
        region (``REGIONS``) -> metric (``METRIC_NAMES``) -> value; a region without pixels has NaN values.
    """
    pred, true = _pair(prediction, target)
    if mask.shape != pred.shape[1:]:
        raise ValueError(f"mask {mask.shape} does not match the images {pred.shape}")
    value, per_pixel = ssim_map(pred, true)
    cloudy = mask.astype(bool)
    whole = {"psnr": psnr(pred, true), "ssim": value, "mae": mae(pred, true), "sam": sam(pred, true)}
    return {
        "all": whole,
        "cloud": _masked(pred, true, cloudy, per_pixel),
        "clear": _masked(pred, true, ~cloudy, per_pixel),
    }
