"""A small cloud and haze detector for RGB imagery, where s2cloudless (which reads ten Sentinel-2 bands) cannot run.

The image is averaged down by ``downsample`` first: clouds and haze are broad, and their context (a bright patch
among darker fields, a veil over a whole scene) matters more than single pixels. Dilated convolutions and a branch
that sees the mean of each feature over the whole input give that context; the logits are upsampled back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class RgbCloudConfig:
    """The detector's constructor arguments, stored with its weights.

    Attributes:
        width: feature channels of every layer.
        dilations: one 3 x 3 convolution per entry, with that dilation.
        downsample: the input is averaged over blocks of this side before the convolutions.
    """

    width: int = 24
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1)
    downsample: int = 4

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RgbCloudConfig:
        """The config from its JSON form (lists become tuples)."""
        values = dict(data)
        if "dilations" in values:
            values["dilations"] = tuple(values["dilations"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)


class RgbCloudNet(nn.Module):
    """(B, 3, H, W) RGB reflectance 0-1 -> (B, 1, H, W) cloud logits."""

    def __init__(self, config: RgbCloudConfig = RgbCloudConfig()) -> None:
        super().__init__()
        self.config = config
        width = config.width
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(width, width, 3, padding=d, dilation=d) for d in config.dilations)
        # the scene-wide mean of each feature, mixed back in at every position: haze is a property of the scene
        self.scene = nn.Linear(width, width)
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, rgb: Tensor) -> Tensor:
        """Cloud logits at the input's size."""
        step = self.config.downsample
        small = F.avg_pool2d(rgb, step, ceil_mode=True) if step > 1 else rgb
        features = F.relu(self.stem(small))
        for layer in self.body:
            features = features + F.relu(layer(features))
        scene = self.scene(features.mean(dim=(2, 3)))[:, :, None, None]
        logits = self.head(F.relu(features + scene))
        return F.interpolate(logits, size=rgb.shape[-2:], mode="bilinear", align_corners=False)


LITE = RgbCloudConfig()


def build(config: dict[str, Any]) -> RgbCloudNet:
    """Rebuild a detector from a card's config dict (the registry's hook)."""
    return RgbCloudNet(RgbCloudConfig.from_dict(config))
