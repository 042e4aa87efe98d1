"""Cloud probability of RGB imagery from the shipped detector ``rgb-cloud-lite`` (s2cloudless needs ten S2 bands).

The detector (``models.networks.rgb_cloud``) was trained on RICE2's Landsat 8 pairs by ``python -m backend train
rgb-cloud``; its card says on what and how well. It is small (about 25 k weights) and runs on the CPU.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from models.cloudmask import RGB_CLOUD_MODEL


@lru_cache(maxsize=1)
def _detector() -> nn.Module:
    """The shipped detector, loaded once per process."""
    from models.registry import load_model

    network, card = load_model(RGB_CLOUD_MODEL)
    if card.algorithm != "rgb-cloud":
        raise ValueError(f"{RGB_CLOUD_MODEL} is a {card.algorithm} model, not an RGB cloud detector")
    return network.eval()


@torch.no_grad()
def rgb_cloud_probability(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) or (B, 3, H, W) red, green, blue reflectance 0-1 -> (H, W) or (B, H, W) float32 cloud probability."""
    batch = rgb[None] if rgb.ndim == 3 else rgb
    if batch.shape[1] != 3:
        raise ValueError(f"the RGB cloud detector needs 3 bands (R, G, B); got {batch.shape[1]}")
    tensor = torch.from_numpy(np.nan_to_num(np.ascontiguousarray(batch, dtype=np.float32)))
    probability = torch.sigmoid(_detector()(tensor))[:, 0].numpy()
    return probability[0] if rgb.ndim == 3 else probability
