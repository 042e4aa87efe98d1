"""Tile cloud masks and a local fill of the clouds from the clear ground around them.

:func:`local_fill` is the push-pull fill of Gortler et al. ("The Lumigraph", SIGGRAPH 1996, Sec. 3.4) over a
cloud mask: the clear pixels are averaged down an image pyramid (pull) and every cloudy pixel takes the finest
level that has enough clear ground under it (push). A cloud is filled from the fields next to it, not from the
tile's median, so a small cloud over a forest becomes forest. DB-CR models with ``bridge_start = "local_fill"``
start their bridge from this image (models/restorers.py): their network then only has to correct the fill.

:func:`fill_clouds` is that fill for Sentinel-2, with the likely cloud shadows left out of what it fills from
(:func:`shadow_like`): a cloud's shadow lies beside it, and a fill that averaged it in came out dark.
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

# A likely cloud shadow: clear, within SHADOW_REACH px of a cloud, and darker in the near and shortwave infrared than
# SHADOW_DARKNESS times the image's clear median there. Water and dark ground beside a cloud pass that test too: they
# are merely not filled from, never changed (clear pixels stay as they are). On the held-out real pairs the fill
# under the clouds went from 26.20 to 26.64 dB (docs/cloud-shadows/README.md).
SHADOW_BANDS = ("B8", "B11")
SHADOW_REACH = 40
SHADOW_DARKNESS = 0.6


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


def filled_start(
    optical: Tensor, sar: Tensor, mask: Tensor, bands: Sequence[str] = (), background: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """A local-fill DB-CR's bridge start and condition: the filled image, and (radar, cloudy image, cloud mask).

    Args:
        optical: (B, C, H, W) cloudy reflectance 0-1.
        sar: (B, S, H, W) radar in [0, 1].
        mask: (B, 1, H, W), 1 = cloud.
        bands: ``optical``'s band names; with Sentinel-2's, cloud shadows are not filled from (:func:`fill_clouds`).
        background: the fill's background (see :func:`local_fill`), or None.
    """
    condition = torch.cat([sar, optical, (mask > 0).to(optical.dtype)], dim=1)
    return fill_clouds(optical, mask, bands, background), condition


def shadow_like(optical: Tensor, mask: Tensor, bands: Sequence[str]) -> Tensor | None:
    """(B, 1, H, W) float, 1 where a clear pixel is dark beside a cloud (see :data:`SHADOW_DARKNESS`).

    None where ``bands`` lack :data:`SHADOW_BANDS` (RGB imagery): then no pixel is singled out.
    """
    if not all(band in bands for band in SHADOW_BANDS):
        return None
    clouds = (mask > 0).to(optical.dtype)
    reach = 2 * SHADOW_REACH + 1
    # A square dilation as two running maxima, rows then columns: 2 x 81 comparisons a pixel, not 81².
    near = F.max_pool2d(clouds, (1, reach), stride=1, padding=(0, SHADOW_REACH))
    near = F.max_pool2d(near, (reach, 1), stride=1, padding=(SHADOW_REACH, 0))
    infrared = optical[:, [list(bands).index(band) for band in SHADOW_BANDS]].mean(dim=1, keepdim=True)
    clear_infrared = torch.where(clouds > 0, torch.full_like(infrared, float("nan")), infrared)
    median = torch.nan_to_num(clear_infrared.flatten(1).nanmedian(dim=1).values, nan=0.0).view(-1, 1, 1, 1)
    return ((near > 0) & (clouds <= 0) & (infrared < SHADOW_DARKNESS * median)).to(optical.dtype)


def fill_clouds(image: Tensor, mask: Tensor, bands: Sequence[str], background: Tensor | None = None) -> Tensor:
    """:func:`local_fill` of the clouds from the clear ground around them, leaving out :func:`shadow_like` pixels."""
    return local_fill(image, mask, background=background, unused=shadow_like(image, mask, bands))


def _pull(values: Tensor, weights: Tensor, levels: int) -> list[tuple[Tensor, Tensor]]:
    """Weighted sums averaged down ``levels`` halvings: [(value sum, weight), ...], finest first."""
    pyramid = [(values * weights, weights)]
    for _ in range(levels):
        total, weight = pyramid[-1]
        if min(weight.shape[-2:]) < 2:
            break
        pyramid.append((F.avg_pool2d(total, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    return pyramid


def local_fill(
    image: Tensor,
    mask: Tensor,
    levels: int = FILL_LEVELS,
    background: Tensor | None = None,
    unused: Tensor | None = None,
) -> Tensor:
    """Replace the masked pixels by a smooth fill from the unmasked ones around them.

    Args:
        image: (B, C, H, W).
        mask: (B, 1, H, W), 1 (or > 0) where the pixel is to be filled.
        levels: pyramid levels; a cloud wider than about 2**levels pixels is filled from the whole tile's mean.
        background: (B, C, H, W), what shows where the tile's coarsest cells have too little clear ground of their
            own (a tile of the whole scene's coarse fill, :class:`SceneFill`), so that a cloud larger than a tile is
            filled alike in every tile it covers; None falls back on the tile's clear mean.
        unused: (B, 1, H, W), 1 (or > 0) where an unmasked pixel must not feed the fill (it is kept as it is); None:
            every unmasked pixel does.

    Returns:
        (B, C, H, W): ``image`` bit for bit outside the mask; inside, the fill. Without clear pixels and without a
        background the image is returned unchanged (there is nothing to fill from).
    """
    clear = (mask <= 0).to(image.dtype)
    if unused is not None:
        clear = clear * (unused <= 0).to(image.dtype)
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
