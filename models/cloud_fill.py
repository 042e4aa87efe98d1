"""Tile cloud masks and a local fill of the clouds from the clear ground around them.

:func:`local_fill` is the push-pull fill of Gortler et al. ("The Lumigraph", SIGGRAPH 1996, Sec. 3.4) over a
cloud mask: the clear pixels are averaged down an image pyramid (pull) and every cloudy pixel takes the finest
level that has enough clear ground under it (push). A cloud is filled from the fields next to it, not from the
tile's median, so a small cloud over a forest becomes forest. DB-CR models with ``bridge_start = "local_fill"``
start their bridge from this image (models/restorers.py): their network then only has to correct the fill.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models.cloudmask import image_clouds

# Pyramid levels: 2**7 = 128 px, half a 256² tile; larger clouds take the tile's clear mean.
FILL_LEVELS = 7


def tile_cloud_mask(optical: Tensor, bands: Sequence[str], threshold: float) -> Tensor:
    """(B, C, H, W) reflectance -> (B, 1, H, W) float mask, 1 = cloud; of the first date where C stacks several."""
    masks = []
    for image in optical[:, : len(bands)].detach().cpu().numpy():
        _, mask = image_clouds(image, bands, threshold)  # RGB imagery: the brightness rule
        masks.append(mask.astype(np.float32))
    return torch.from_numpy(np.stack(masks))[:, None].to(optical.device)


def filled_start(optical: Tensor, sar: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """A local-fill DB-CR's bridge start and condition: the filled image, and (radar, cloudy image, cloud mask).

    Args:
        optical: (B, C, H, W) cloudy reflectance 0-1.
        sar: (B, S, H, W) radar in [0, 1].
        mask: (B, 1, H, W), 1 = cloud.
    """
    return local_fill(optical, mask), torch.cat([sar, optical, (mask > 0).to(optical.dtype)], dim=1)


def _pull(values: Tensor, weights: Tensor, levels: int) -> list[tuple[Tensor, Tensor]]:
    """Weighted sums averaged down ``levels`` halvings: [(value sum, weight), ...], finest first."""
    pyramid = [(values * weights, weights)]
    for _ in range(levels):
        total, weight = pyramid[-1]
        if min(weight.shape[-2:]) < 2:
            break
        pyramid.append((F.avg_pool2d(total, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    return pyramid


def local_fill(image: Tensor, mask: Tensor, levels: int = FILL_LEVELS) -> Tensor:
    """Replace the masked pixels by a smooth fill from the unmasked ones around them.

    Args:
        image: (B, C, H, W).
        mask: (B, 1, H, W), 1 (or > 0) where the pixel is to be filled.
        levels: pyramid levels; a cloud wider than about 2**levels pixels is filled from the whole tile's mean.

    Returns:
        (B, C, H, W): ``image`` bit for bit outside the mask; inside, the fill. An image without clear pixels is
        returned unchanged (there is nothing to fill from).
    """
    clear = (mask <= 0).to(image.dtype)
    pyramid = _pull(image, clear, levels)
    total, weight = pyramid[-1]
    # The coarsest level: each cell its own clear mean, or the image's mean where the cell has no clear pixel.
    image_mean = (image * clear).sum(dim=(2, 3), keepdim=True) / clear.sum(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    fill = torch.where(weight > 0, total / weight.clamp(min=1e-6), image_mean.expand_as(total))
    for total, weight in reversed(pyramid[:-1]):
        coarse = F.interpolate(fill, size=total.shape[-2:], mode="bilinear", align_corners=False)
        # Where a cell is at least a quarter clear its own mean is trusted; with less, the coarser fill shows through.
        trust = (4 * weight).clamp(max=1.0)
        fill = trust * (total / weight.clamp(min=1e-6)) + (1 - trust) * coarse
    has_clear = clear.sum(dim=(1, 2, 3), keepdim=True) > 0
    return torch.where((mask > 0) & has_clear, fill, image)
