"""Cloud probability and cloud mask of a Sentinel-2 image: s2cloudless, plus a labelled fallback for RGB images.

s2cloudless (Sentinel Hub, LightGBM) classifies single pixels of L1C top-of-atmosphere reflectance from ten bands:
B01, B02, B04, B05, B08, B8A, B09, B10, B11, B12. Its model file ships inside the package, so nothing is downloaded.

L2A input (12 bands, no B10): B10 is the cirrus band (1375 nm), which surface reflectance products drop. We feed
the classifier a constant ``B10_FILL`` (a typical clear-sky cirrus reflectance) instead. The mask of an L2A image is
therefore less reliable: thin cirrus goes unseen, and the classifier was trained on top-of-atmosphere, not surface,
reflectance.

Images without those bands (8-bit RGB PNGs, RGB+NIR tiles) cannot use s2cloudless; their clouds come from a small
network learnt from RICE2's RGB pairs (``models.rgb_cloud_mask``), on their first three bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from models.card import MISSING_BAND_FILL, S2_L1C_BANDS, S2_L2A_BANDS

if TYPE_CHECKING:
    from s2cloudless import S2PixelCloudDetector

# The bands s2cloudless reads, in its order, named as in model cards.
S2CLOUDLESS_BANDS = ("B1", "B2", "B4", "B5", "B8", "B8A", "B9", "B10", "B11", "B12")
# L2A has no B10: the same clear-sky value the networks see (models.card.MISSING_BAND_FILL).
B10_FILL = MISSING_BAND_FILL["B10"]
# s2cloudless README settings for 10 m data.
DEFAULT_THRESHOLD = 0.4
DEFAULT_AVERAGE_OVER = 4
DEFAULT_DILATION = 2
# The clouds of RGB imagery: a network learnt from RICE2's pairs (models.rgb_cloud_mask), shipped in models/weights.
RGB_CLOUD_MODEL = "rgb-cloud-lite"
RGB_CLOUD_LABEL = f"learnt RGB cloud and haze detector ({RGB_CLOUD_MODEL}, trained on RICE2 pairs)"


def default_bands(band_count: int) -> tuple[str, ...]:
    """Band names of a Sentinel-2 stack given only its band count.

    Args:
        band_count: 13 (L1C, B1..B12 with B8A and B10) or 12 (L2A, the same without B10).

    Returns:
        The band names in stack order.

    Raises:
        ValueError: for any other count, with a sentence saying what s2cloudless needs.
    """
    if band_count == len(S2_L1C_BANDS):
        return S2_L1C_BANDS
    if band_count == len(S2_L2A_BANDS):
        return S2_L2A_BANDS
    raise ValueError(
        f"the image has {band_count} bands; s2cloudless needs a 13-band L1C or 12-band L2A Sentinel-2 stack "
        "(B1..B12 with B8A)"
    )


# s2cloudless's classifier costs about 30 us a pixel on a CPU core, and its authors run it at 160 m; here it runs on
# 8 x 8 block means (80 m for 10 m bands), 64 times fewer pixels, and the probability is spread back over each block
# before the averaging disk and the dilation, which work at full resolution. 4 x 4 blocks cost four times as much
# (13 % of the network's time on a 4096 x 4096 scene, docs/bench.md); on 20 real Sentinel-2 images the 8 x 8 mask
# kept an IoU of 0.95 with the 4 x 4 one, and DB-CR's whole-image PSNR on the held-out real pairs moved by 0.04 dB.
PROBABILITY_STEP = 8


def supports_s2cloudless(bands: Sequence[str]) -> bool:
    """Whether a stack with these band names holds what s2cloudless reads (B10 may be missing)."""
    return all(band in bands for band in S2CLOUDLESS_BANDS if band != "B10")


def cloud_probability(reflectance: np.ndarray, bands: Sequence[str] | None = None) -> np.ndarray:
    """Per-pixel cloud probability from s2cloudless.

    Args:
        reflectance: (C, H, W) top-of-atmosphere reflectance, 0-1 (DN / 10000). NaN counts as 0.
        bands: the name of each of the C bands (model-card names, e.g. ``B8A``); None means the 13-band L1C or
            12-band L2A order, chosen by C. Without B10 the constant ``B10_FILL`` stands in (less reliable mask).

    Returns:
        (H, W) float32 cloud probability, 0-1.
    """
    return spread_blocks(classify(block_features(reflectance, bands)), reflectance.shape[1:])


def block_features(reflectance: np.ndarray, bands: Sequence[str] | None = None) -> np.ndarray:
    """What s2cloudless classifies: (C, H, W) reflectance -> (h, w, 10) means of ``PROBABILITY_STEP`` blocks.

    The bands are those s2cloudless reads, in its order (``B10_FILL`` where B10 is absent); NaN counts as 0; a
    partial block at the bottom or right edge repeats the edge pixels. See :func:`cloud_probability` for the args.
    """
    names = tuple(bands) if bands is not None else default_bands(reflectance.shape[0])
    if len(names) != reflectance.shape[0]:
        raise ValueError(f"{len(names)} band names given for an image of {reflectance.shape[0]} bands")
    if not supports_s2cloudless(names):
        missing = [band for band in S2CLOUDLESS_BANDS if band != "B10" and band not in names]
        raise ValueError(f"s2cloudless needs bands {', '.join(missing)}, which the image lacks")
    present = [band for band in S2CLOUDLESS_BANDS if band in names]
    # The block means are taken band by band before anything is stacked pixel-wise: the full-resolution stack
    # would be a transposed copy of the whole tile.
    planes = np.nan_to_num(reflectance[[names.index(band) for band in present]].astype(np.float32, copy=False))
    means = block_mean(planes, PROBABILITY_STEP)
    features = np.empty((*means.shape[1:], len(S2CLOUDLESS_BANDS)), dtype=np.float32)
    for slot, band in enumerate(S2CLOUDLESS_BANDS):
        features[..., slot] = means[present.index(band)] if band in present else B10_FILL
    return features


def classify(features: np.ndarray) -> np.ndarray:
    """s2cloudless's cloud probability of each feature vector: (..., 10) -> (...) float32, one classifier call.

    One call for many tiles: a call has a fixed cost, about as much as classifying 4,000 pixels.
    """
    if features.size == 0:
        return np.zeros(features.shape[:-1], dtype=np.float32)
    rows = features.reshape(1, -1, 1, len(S2CLOUDLESS_BANDS))
    probability = _detector().get_cloud_probability_maps(rows)
    return np.asarray(probability, dtype=np.float32).reshape(features.shape[:-1])


def spread_blocks(blocks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(h, w) values of ``PROBABILITY_STEP`` blocks -> (H, W): each block's value on each of its pixels."""
    height, width = shape[-2:]
    return np.repeat(np.repeat(blocks, PROBABILITY_STEP, 0), PROBABILITY_STEP, 1)[:height, :width]


def block_mean(planes: np.ndarray, step: int) -> np.ndarray:
    """(C, H, W) -> (C, ceil(H / step), ceil(W / step)) means of step x step blocks (edges padded by replication)."""
    height, width = planes.shape[1:]
    rows, cols = -(-height // step) * step, -(-width // step) * step
    if (rows, cols) != (height, width):
        planes = np.pad(planes, ((0, 0), (0, rows - height), (0, cols - width)), mode="edge")
    blocks = planes.reshape(planes.shape[0], rows // step, step, cols // step, step)
    # float64 sums: the classifier's splits sit on DN / 10000 values, and float32 rounding would move pixels across them
    return blocks.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)


def mask_from_probability(
    probability: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    average_over: int = DEFAULT_AVERAGE_OVER,
    dilation_size: int = DEFAULT_DILATION,
) -> np.ndarray:
    """Threshold a cloud probability map the way s2cloudless does.

    Args:
        probability: (H, W) cloud probability, 0-1.
        threshold: probability above which a pixel (after averaging) is cloud.
        average_over: radius in pixels of the disk the probability is averaged over first; 0 to skip.
        dilation_size: radius in pixels of the disk the mask is dilated by; 0 to skip.

    Returns:
        (H, W) bool mask, True where cloudy.
    """
    # The same steps as S2PixelCloudDetector.get_mask_from_prob, done here because that method hands cv2.dilate an
    # int8 mask (unsupported) whenever averaging is switched off. Imported late: s2cloudless pulls in sentinelhub.
    import cv2
    from s2cloudless.utils import cv2_disk

    averaged: np.ndarray = probability.astype(np.float32)
    if average_over > 0:
        disk = cv2_disk(average_over).astype(np.float32)
        averaged = cv2.filter2D(averaged, -1, disk / disk.sum(), borderType=cv2.BORDER_REFLECT)
    mask: np.ndarray = (averaged > threshold).astype(np.uint8)
    if dilation_size > 0:
        mask = cv2.dilate(mask, cv2_disk(dilation_size))
    return np.asarray(mask, dtype=bool)


def cloud_mask(
    reflectance: np.ndarray,
    bands: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    average_over: int = DEFAULT_AVERAGE_OVER,
    dilation_size: int = DEFAULT_DILATION,
) -> np.ndarray:
    """s2cloudless cloud mask of one image.

    Args:
        reflectance: (C, H, W) top-of-atmosphere reflectance, 0-1.
        bands: band names of the stack (see ``cloud_probability``); None for 13-band L1C or 12-band L2A order.
        threshold: cloud probability threshold.
        average_over: radius (pixels) of the averaging disk; 0 to skip.
        dilation_size: radius (pixels) of the dilation disk; 0 to skip.

    Returns:
        (H, W) bool mask, True where cloudy.
    """
    probability = cloud_probability(reflectance, bands)
    return mask_from_probability(probability, threshold, average_over, dilation_size)


def image_clouds(
    image: np.ndarray, bands: Sequence[str], threshold: float = DEFAULT_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Cloud probability and mask of one image, whatever its bands.

    s2cloudless where the bands allow it; otherwise the learnt RGB detector (``models.rgb_cloud_mask``) on the
    first three bands, taken as R, G, B, its probability thresholded at ``threshold``.

    Args:
        image: (C, H, W) reflectance 0-1.
        bands: its band names (model-card names).
        threshold: the cloud threshold.

    Returns:
        (H, W) float32 probability 0-1 and (H, W) bool mask, True where cloudy.
    """
    if supports_s2cloudless(bands):
        probability = cloud_probability(image, bands)
        return probability, mask_from_probability(probability, threshold)
    # Imported here: the detector is a torch network, and s2cloudless users need no torch for their masks.
    from models.rgb_cloud_mask import rgb_cloud_probability

    probability = rgb_cloud_probability(image[:3])
    return probability, probability > threshold


def cloud_fraction(mask: np.ndarray) -> float:
    """Fraction of cloudy pixels in a mask, 0-1."""
    return float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0


@lru_cache(maxsize=1)
def _detector() -> S2PixelCloudDetector:
    """The one classifier of this process: loading the LightGBM model takes a moment, so it is kept."""
    from s2cloudless import S2PixelCloudDetector

    # all_bands=False: we hand over the ten bands ourselves, so B10 can be filled for L2A input.
    return S2PixelCloudDetector(all_bands=False)
