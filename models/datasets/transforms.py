"""Augmentation by the eight flips and quarter turns of a square (the dihedral group D4).

Satellite images have no up or left, so every one of the eight is as real as the original, and none resamples pixels.
The same operation is applied to every image of a sample, so cloudy, target and SAR stay aligned.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

DIHEDRAL_OPS = 8


def dihedral(image: Tensor, op: int) -> Tensor:
    """Apply one of the eight flips/rotations to the last two axes.

    Args:
        image: (..., H, W) tensor.
        op: 0-7; ``op % 4`` quarter turns counter-clockwise, then a left-right flip when ``op >= 4``.

    Returns:
        The transformed tensor (a new one; (..., W, H) for odd turns of a non-square image).
    """
    if not 0 <= op < DIHEDRAL_OPS:
        raise ValueError(f"op must be 0-7, got {op}")
    turned = torch.rot90(image, op % 4, dims=(-2, -1))
    return torch.flip(turned, dims=(-1,)) if op >= 4 else turned


class RandomDihedral:
    """Apply one random flip/rotation, the same to every tensor of a sample dict (other values pass through).

    Args:
        generator: source of randomness; None uses torch's global generator, which DataLoader seeds differently in
            each worker (a fixed Python ``random.Random`` would repeat the same sequence in every worker).
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return a new sample with the images transformed."""
        op = int(torch.randint(DIHEDRAL_OPS, (1,), generator=self.generator).item())
        return {
            key: dihedral(value, op) if isinstance(value, Tensor) and value.ndim >= 2 else value
            for key, value in sample.items()
        }
