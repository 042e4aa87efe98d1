"""Random training batches from clear chips: crops, flips and rotations, SAR where the chip has it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from models.card import SAR_MISSING
from models.training.chips import Chip

if TYPE_CHECKING:
    from models.datasets.real_pairs import RealPair

# Path radiance of a clear atmosphere per L1C band (reflectance; Rayleigh scattering makes it strongest in the
# blue, B10 is absorbed): roughly the gap between L1C (top of atmosphere) and L2A (surface) over land.
PATH_RADIANCE = np.array(
    [0.10, 0.06, 0.04, 0.03, 0.03, 0.02, 0.02, 0.015, 0.015, 0.01, 0.0, 0.005, 0.003], dtype=np.float32
)
SURFACE_SOURCES = ("Major-TOM", "BigEarthNet")  # L2A: surface reflectance


def add_atmosphere(optical: np.ndarray, surface: bool, rng: random.Random) -> np.ndarray:
    """Add a random clear-sky path radiance and gain to a clear (13, H, W) chip, target and input alike.

    L2A chips get about a whole atmosphere so they pass for L1C; L1C chips get a little more haze. Since the target
    carries it too, the network cannot learn that a brighter scene means a hazier one, and leaves brightness be.
    """
    # Up to two and a half atmospheres: hazy tropical and summer scenes are clear ground too, not thin cloud.
    strength = rng.uniform(0.6, 2.5) if surface else rng.uniform(0.0, 1.2)
    gain = rng.uniform(0.9, 1.1)
    return (optical * gain + strength * PATH_RADIANCE[:, None, None]).astype(np.float32)


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
        chip = rng.choice(pool)
        optical, radar = random_crop(chip, size, rng)
        optical = add_atmosphere(optical, chip.source in SURFACE_SOURCES, rng)
        keep_sar = radar is not None and rng.random() >= sar_dropout
        radar = radar if keep_sar and radar is not None else np.full((2, size, size), SAR_MISSING, np.float32)
        optical, radar = augment([optical, radar], rng)
        clear.append(optical)
        sar.append(radar)
        has_sar.append(keep_sar)
    return Batch(torch.from_numpy(np.stack(clear)), torch.from_numpy(np.stack(sar)), torch.tensor(has_sar))


def sample_real_pairs(pairs: Sequence[RealPair], count: int, size: int, rng: random.Random) -> tuple[Tensor, Tensor]:
    """``count`` augmented crops of real cloudy / cloud-free pairs: (clear, cloudy), each (count, 13, S, S).

    The same window, flip and turn for both images of a pair. No atmosphere is added: both are real L1C.
    """
    clear, cloudy = [], []
    for _ in range(count):
        pair = rng.choice(pairs)
        height, width = pair.clear.shape[-2:]
        row, col = rng.randrange(height - size + 1), rng.randrange(width - size + 1)
        window = np.s_[..., row : row + size, col : col + size]
        target, source = augment([pair.clear[window], pair.cloudy[window]], rng)
        clear.append(target)
        cloudy.append(source)
    return torch.from_numpy(np.stack(clear)), torch.from_numpy(np.stack(cloudy))
