"""Random training batches from clear chips: crops, flips and rotations, SAR where the chip has it."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.training.chips import Chip


@dataclass(frozen=True)
class Batch:
    """Clear optical (B, 13, S, S) reflectance, SAR (B, 2, S, S) in [0, 1] (zeros where missing), and a flag."""

    clear: Tensor
    sar: Tensor
    has_sar: Tensor


def augment(arrays: list[np.ndarray], rng: random.Random) -> list[np.ndarray]:
    """The same random flip and quarter turn for every array of one sample (the dihedral group D4)."""
    turns, flip = rng.randrange(4), rng.random() < 0.5
    out = []
    for array in arrays:
        array = np.rot90(array, turns, axes=(-2, -1))
        out.append(np.ascontiguousarray(array[..., ::-1] if flip else array))
    return out


def random_crop(chip: Chip, size: int, rng: random.Random) -> tuple[np.ndarray, np.ndarray | None]:
    """A size x size window at a random place of the chip, from both optical and SAR."""
    height, width = chip.optical.shape[-2:]
    row, col = rng.randrange(height - size + 1), rng.randrange(width - size + 1)
    window = np.s_[..., row : row + size, col : col + size]
    return chip.optical[window], None if chip.sar is None else chip.sar[window]


def sample_batch(
    chips: list[Chip], batch: int, size: int, rng: random.Random, pair_share: float = 0.5, sar_dropout: float = 0.1
) -> Batch:
    """Draw ``batch`` augmented crops; ``pair_share`` of them from chips with SAR (they are rarer)."""
    usable = [chip for chip in chips if min(chip.optical.shape[-2:]) >= size]
    paired = [chip for chip in usable if chip.sar is not None]
    clear, sar, has_sar = [], [], []
    for _ in range(batch):
        pool = paired if paired and rng.random() < pair_share else usable
        optical, radar = random_crop(rng.choice(pool), size, rng)
        keep_sar = radar is not None and rng.random() >= sar_dropout
        radar = radar if keep_sar and radar is not None else np.zeros((2, size, size), np.float32)
        optical, radar = augment([optical, radar], rng)
        clear.append(optical)
        sar.append(radar)
        has_sar.append(keep_sar)
    return Batch(torch.from_numpy(np.stack(clear)), torch.from_numpy(np.stack(sar)), torch.tensor(has_sar))
