"""Keep clear pixels as they are: the model's output only under clouds, feathered at the mask's edge.

A wrapper around any restorer (``restore(optical, sar, origins) -> optical``), so neither the networks nor the
tiling know about it. The cloud mask is s2cloudless for Sentinel-2 bands and the learnt RGB detector for RGB imagery.

The model's output is first matched to the tile's clear pixels: per band, the mean difference between input and
output over the clear pixels is added to the output. A model trained elsewhere may render a scene's overall
brightness differently (another season, atmosphere or sensor state); without the match, filled clouds would stand
out as darker or brighter patches next to the kept clear ground.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.restorers import Restorer

# The blend ramps from input to model output over about 3 sigma: wide enough to hide the seam, narrow enough
# that clear fields next to a cloud keep their own texture.
FEATHER_SIGMA = 3.0


def feather(mask: Tensor, sigma: float = FEATHER_SIGMA) -> Tensor:
    """Blur a (B, 1, H, W) mask with a Gaussian and keep it at 1 inside the clouds: a soft edge, outwards only."""
    radius = max(1, round(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=mask.dtype, device=mask.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(mask, (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(F.conv2d(padded, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    return torch.maximum(mask, (2 * blurred).clamp(0, 1))


def match_clear_pixels(restored: Tensor, optical: Tensor, clear: Tensor, minimum: int = 64) -> Tensor:
    """Shift each band of each image so that its mean over the clear pixels equals the input's there.

    Args:
        restored: (B, C, H, W) model output.
        optical: (B, C, H, W) input.
        clear: (B, 1, H, W) True where the pixel is clear (and kept).
        minimum: images with fewer clear pixels are left as they are (too little to measure the difference).
    """
    weights = clear.to(restored.dtype)
    counts = weights.sum(dim=(2, 3), keepdim=True)
    offset = ((optical - restored) * weights).sum(dim=(2, 3), keepdim=True) / counts.clamp(min=1)
    return restored + torch.where(counts >= minimum, offset, torch.zeros_like(offset))


def fill_clouds_only(
    restore: Restorer,
    optical: Tensor,
    sar: Tensor | None,
    origins: list[tuple[int, int]],
    mask: Tensor,
    bands: int | None = None,
) -> Tensor:
    """Restore a batch and keep its clear pixels: the model's output only under ``mask``, feathered at its edge.

    Args:
        restore: the method's restorer.
        optical: (B, C, H, W) reflectance.
        sar: the restorer's SAR input, or None.
        origins: the tiles' origins, passed to the restorer.
        mask: (B, 1, H, W) float, 1 = cloud (e.g. :func:`tile_cloud_mask`, computed once per tile by the caller).
        bands: the restored image's band count, where ``optical`` stacks several dates (None: all its bands).

    Returns:
        (B, C, H, W): the input where the feathered mask is 0, bit for bit; the network is not run without clouds.
    """
    # Several dates come stacked band-wise, the first (the one restored and kept) first.
    first = optical[:, :bands] if bands else optical
    if not bool(mask.any()):
        return first.clone()  # nothing to restore: skip the network
    weight = feather(mask)
    restored = match_clear_pixels(restore(optical, sar, origins, mask=mask), first, weight == 0)
    return torch.where(weight > 0, weight * restored + (1 - weight) * first, first)
