"""RICE cloudy / cloud-free pairs in memory for training DE: a fixed held-out split and random augmented crops.

RICE has no official split and no places (DE's author: "random"), so the split here is by image id and
deterministic: pairs are sorted by id (numerically, ``models.datasets.rice.find_pairs``) and every ``every``-th one
(the 10th, 20th, …; 10 of RICE2's 107) is held out for validation and never trained on. The 512² RICE2 pairs
(``rice2-512``, other ids) are split the same way (4 of 48 held out); their training images are cut into 256²
quarters so that every training pair has one size, and their held-out ones are validated whole, at 512².
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.datasets.rasters import DatasetError, read_raw
from models.datasets.rice import find_pairs
from models.training.batches import augment

HOLD_OUT_EVERY = 10
# The RICE folders of the data root, each with the suffix its validation metrics carry ("" for the 256² set).
RICE_SETS = {"rice2": "", "rice2-512": "_512"}
TRAIN_SIZE = 256
CROP_STEP = 16  # crop sizes are multiples of this: DE-lite and the reference network need multiples of 8


@dataclass(frozen=True)
class Pairs:
    """Cloudy and clear images as stored: (N, C, H, W) uint8 (8-bit display values), with their ids."""

    cloudy: np.ndarray
    clear: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.names)

    def subset(self, indices: list[int]) -> Pairs:
        """The pairs at ``indices``."""
        return Pairs(self.cloudy[indices], self.clear[indices], tuple(self.names[i] for i in indices))


def load_pairs(root: Path) -> Pairs:
    """Every RICE pair under ``root`` (either layout of ``models.datasets.rice``), kept as 8-bit to save memory.

    Raises:
        DatasetError: no pairs, a missing partner, or images of different sizes.
    """
    pairs = find_pairs(root)
    cloudy = np.stack([read_raw(path) for _name, path, _clear in pairs]).astype(np.uint8)
    clear = np.stack([read_raw(path) for _name, _cloudy, path in pairs]).astype(np.uint8)
    return Pairs(cloudy, clear, tuple(name for name, _cloudy, _clear in pairs))


def split_pairs(pairs: Pairs, every: int = HOLD_OUT_EVERY) -> tuple[Pairs, Pairs]:
    """Training and validation pairs: every ``every``-th pair in id order is held out."""
    held = [index for index in range(len(pairs)) if index % every == every - 1]
    kept = [index for index in range(len(pairs)) if index % every != every - 1]
    return pairs.subset(kept), pairs.subset(held)


def quarters(pairs: Pairs, size: int = TRAIN_SIZE) -> Pairs:
    """Every image cut into non-overlapping ``size``² squares (named ``<id>_<row>_<col>``); smaller ones unchanged."""
    height, width = pairs.cloudy.shape[-2:]
    if height <= size and width <= size:
        return pairs
    cuts = [(row, col) for row in range(0, height - size + 1, size) for col in range(0, width - size + 1, size)]
    window = [np.s_[..., row : row + size, col : col + size] for row, col in cuts]
    return Pairs(
        np.concatenate([np.stack([image[w] for w in window]) for image in pairs.cloudy]),
        np.concatenate([np.stack([image[w] for w in window]) for image in pairs.clear]),
        tuple(f"{name}_{row}_{col}" for name in pairs.names for row, col in cuts),
    )


def joined(parts: list[Pairs]) -> Pairs:
    """Several sets of pairs of one image size as one."""
    return Pairs(
        np.concatenate([part.cloudy for part in parts]),
        np.concatenate([part.clear for part in parts]),
        tuple(name for part in parts for name in part.names),
    )


def load_rice_sets(data_root: Path, train_size: int = TRAIN_SIZE) -> tuple[Pairs, dict[str, Pairs]]:
    """The training pairs of every RICE folder present (cut to ``train_size``²) and each folder's held-out pairs.

    Raises:
        DatasetError: no RICE folder under ``data_root``, or one that :func:`load_pairs` refuses.
    """
    present = [name for name in RICE_SETS if (data_root / name).is_dir()]
    if not present:
        raise DatasetError(f"no RICE pairs under {data_root}: expected one of {', '.join(RICE_SETS)}")
    train, validation = [], {}
    for name in present:
        kept, held = split_pairs(load_pairs(data_root / name))
        train.append(quarters(kept, train_size))
        validation[name] = held
    return joined(train), validation


def to_unit(images: np.ndarray) -> Tensor:
    """8-bit values → float32 tensor on [0, 1] (value / 255, the scale the restorers take)."""
    return torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0


def crop_sizes(min_crop: int, max_crop: int) -> list[int]:
    """The crop sizes a batch may use: multiples of ``CROP_STEP`` from ``min_crop`` to ``max_crop``."""
    low = min(max(CROP_STEP, min_crop - min_crop % CROP_STEP), max_crop)
    return list(range(low, max_crop + 1, CROP_STEP)) or [max_crop]


def sample_pairs(pairs: Pairs, batch: int, sizes: list[int], rng: random.Random) -> tuple[Tensor, Tensor]:
    """A batch of (cloudy, clear) crops on [0, 1], (B, C, S, S), one random size S per batch, flips and rot90."""
    size = rng.choice(sizes)
    height, width = pairs.cloudy.shape[-2:]
    cloudy, clear = [], []
    for _ in range(batch):
        index = rng.randrange(len(pairs))
        row, col = rng.randrange(height - size + 1), rng.randrange(width - size + 1)
        window = np.s_[:, row : row + size, col : col + size]
        a, b = augment([pairs.cloudy[index][window], pairs.clear[index][window]], rng)
        cloudy.append(a)
        clear.append(b)
    return to_unit(np.stack(cloudy)), to_unit(np.stack(clear))


def center_crops(pairs: Pairs, size: int) -> tuple[Tensor, Tensor]:
    """The validation images' central ``size`` squares (the whole images for size 0), on [0, 1]."""
    height, width = pairs.cloudy.shape[-2:]
    if size <= 0 or size >= min(height, width):
        return to_unit(pairs.cloudy), to_unit(pairs.clear)
    row, col = (height - size) // 2, (width - size) // 2
    window = np.s_[..., row : row + size, col : col + size]
    return to_unit(pairs.cloudy[window]), to_unit(pairs.clear[window])
