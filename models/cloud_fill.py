"""Tile cloud masks and a local fill of the clouds from the clear ground around them.

:func:`local_fill` is the push-pull fill of Gortler et al. ("The Lumigraph", SIGGRAPH 1996, Sec. 3.4) over a
cloud mask: the clear pixels are averaged down an image pyramid (pull) and every cloudy pixel takes the finest
level that has enough clear ground under it (push). A cloud is filled from the fields next to it, not from the
tile's median, so a small cloud over a forest becomes forest. DB-CR models with ``bridge_start = "local_fill"``
start their bridge from this image (models/restorers.py): their network then only has to correct the fill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models.cloudmask import (
    block_features,
    classify,
    image_clouds,
    mask_from_probability,
    spread_blocks,
    supports_s2cloudless,
)

# (N, h, w, 10) block features -> (N, h, w) cloud probabilities.
BlockClassifier = Callable[[np.ndarray], np.ndarray]

# Pyramid levels: 2**7 = 128 px, half a 256² tile; larger clouds take the tile's clear mean.
FILL_LEVELS = 7


def tile_cloud_mask(
    optical: Tensor, bands: Sequence[str], threshold: float, classify_blocks: BlockClassifier = classify
) -> Tensor:
    """(B, C, H, W) reflectance -> (B, 1, H, W) float mask, 1 = cloud; of the first date where C stacks several.

    Sentinel-2 tiles go through s2cloudless together, in one ``classify_blocks`` call over all their block features
    (the backend passes one that skips blocks a neighbouring tile already classified); RGB imagery takes the
    learnt RGB detector, tile by tile.
    """
    images = optical[:, : len(bands)].detach().cpu().numpy()
    if supports_s2cloudless(bands):
        blocks = classify_blocks(np.stack([block_features(image, bands) for image in images]))
        masks = [mask_from_probability(spread_blocks(block, images.shape[-2:]), threshold) for block in blocks]
    else:
        masks = [image_clouds(image, bands, threshold)[1] for image in images]
    return torch.from_numpy(np.stack(masks).astype(np.float32))[:, None].to(optical.device)


def filled_start(optical: Tensor, sar: Tensor, mask: Tensor, background: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """A local-fill DB-CR's bridge start and condition: the filled image, and (radar, cloudy image, cloud mask).

    Args:
        optical: (B, C, H, W) cloudy reflectance 0-1.
        sar: (B, S, H, W) radar in [0, 1].
        mask: (B, 1, H, W), 1 = cloud.
        background: the fill's background (see :func:`local_fill`), or None.
    """
    condition = torch.cat([sar, optical, (mask > 0).to(optical.dtype)], dim=1)
    return local_fill(optical, mask, background=background), condition


def _pull(values: Tensor, weights: Tensor, levels: int) -> list[tuple[Tensor, Tensor]]:
    """Weighted sums averaged down ``levels`` halvings: [(value sum, weight), ...], finest first."""
    pyramid = [(values * weights, weights)]
    for _ in range(levels):
        total, weight = pyramid[-1]
        if min(weight.shape[-2:]) < 2:
            break
        pyramid.append((F.avg_pool2d(total, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    return pyramid


def local_fill(image: Tensor, mask: Tensor, levels: int = FILL_LEVELS, background: Tensor | None = None) -> Tensor:
    """Replace the masked pixels by a smooth fill from the unmasked ones around them.

    Args:
        image: (B, C, H, W).
        mask: (B, 1, H, W), 1 (or > 0) where the pixel is to be filled.
        levels: pyramid levels; a cloud wider than about 2**levels pixels is filled from the whole tile's mean.
        background: (B, C, H, W), what shows where the tile's coarsest cells have too little clear ground of their
            own (a tile of the whole scene's coarse fill, :class:`SceneFill`), so that a cloud larger than a tile is
            filled alike in every tile it covers; None falls back on the tile's clear mean.

    Returns:
        (B, C, H, W): ``image`` bit for bit outside the mask; inside, the fill. Without clear pixels and without a
        background the image is returned unchanged (there is nothing to fill from).
    """
    clear = (mask <= 0).to(image.dtype)
    pyramid = _pull(image, clear, levels)
    fill = _push(pyramid, image, clear)
    if background is None:
        fillable = clear.sum(dim=(1, 2, 3), keepdim=True) > 0
        return torch.where((mask > 0) & fillable, fill, image)
    # Where the tile's coarsest cells hold little clear ground of their own, the scene's fill takes over.
    _, support = _trusted(*pyramid[-1])
    support = F.interpolate(support, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return torch.where(mask > 0, support * fill + (1 - support) * background, image)


def _trusted(total: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """A level's clear mean, and how far to trust it: fully from a quarter clear, less below that."""
    return total / weight.clamp(min=1e-6), (4 * weight).clamp(max=1.0)


def _push(pyramid: list[tuple[Tensor, Tensor]], image: Tensor, clear: Tensor) -> Tensor:
    """Push the pulled means back up, the coarsest cells without clear ground taking the tile's clear mean."""
    total, weight = pyramid[-1]
    counts = clear.sum(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    tile_mean = ((image * clear).sum(dim=(2, 3), keepdim=True) / counts).expand_as(total)
    fill = torch.where(weight > 0, total / weight.clamp(min=1e-6), tile_mean)
    for total, weight in reversed(pyramid[:-1]):
        coarse = F.interpolate(fill, size=total.shape[-2:], mode="bilinear", align_corners=False)
        mean, trust = _trusted(total, weight)
        fill = trust * mean + (1 - trust) * coarse
    return fill


@dataclass(frozen=True)
class SceneFill:
    """A whole scene's local fill at low resolution: the background of every tile's fill.

    Attributes:
        coarse: (C, h, w) float32, the scene read ``factor`` times smaller with its clouds locally filled.
        factor: scene pixels per coarse pixel, (rows, columns).
    """

    coarse: np.ndarray
    factor: tuple[float, float]

    def tiles(self, origins: Sequence[tuple[int, int]], size: tuple[int, int]) -> Tensor:
        """(B, C, size) crops of the coarse fill, resampled bilinearly onto the tiles at ``origins`` (row, col)."""
        coarse = torch.from_numpy(self.coarse)[None]
        height, width = self.coarse.shape[-2:]
        rows, cols = torch.arange(size[0], dtype=torch.float32), torch.arange(size[1], dtype=torch.float32)
        crops = []
        for row, col in origins:
            # Scene pixel centre -> coarse grid in grid_sample's [-1, 1] (align_corners=False) coordinates.
            y = 2 * (row + rows + 0.5) / (self.factor[0] * height) - 1
            x = 2 * (col + cols + 0.5) / (self.factor[1] * width) - 1
            grid = torch.stack(torch.meshgrid(y, x, indexing="ij")[::-1], dim=-1)[None]
            crops.append(F.grid_sample(coarse, grid, mode="bilinear", padding_mode="border", align_corners=False))
        return torch.cat(crops)


def scene_fill(coarse: np.ndarray, mask: np.ndarray, factor: tuple[float, float]) -> SceneFill:
    """The :class:`SceneFill` of a scene read ``factor`` times smaller: (C, h, w) reflectance, (h, w) cloud mask."""
    image = torch.from_numpy(np.ascontiguousarray(coarse, dtype=np.float32))[None]
    filled = local_fill(image, torch.from_numpy(mask.astype(np.float32))[None, None])
    return SceneFill(filled[0].numpy(), factor)
