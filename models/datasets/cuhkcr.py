"""CUHK-CR (Sui et al. 2024, the DE paper): 0.5 m cloudy / cloud-free pairs, RGB plus a separate NIR image.

CUHK-CR1 holds thin clouds, CUHK-CR2 thick ones. Layout of one set, as DE's loader reads it::

    <set>/{train,test}/cloud/<name>          cloudy RGB (8-bit)
    <set>/{train,test}/label/<name>          cloud-free RGB
    <set>/{train,test}/nir/cloud/<name>      cloudy NIR (channel 0 of an 8-bit image)
    <set>/{train,test}/nir/label/<name>      cloud-free NIR

The four bands are stacked R, G, B, NIR, as DE does for its 4-band models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from models.datasets.rasters import DatasetError, list_files, read_reflectance

SPLITS = ("train", "test")


@dataclass(frozen=True)
class CUHKCRPair:
    """The files of one pair; ``cloudy_nir`` and ``target_nir`` are None when NIR is not read."""

    name: str
    cloudy: Path
    target: Path
    cloudy_nir: Path | None
    target_nir: Path | None


def find_pairs(root: Path, split: str, nir: bool = True) -> list[CUHKCRPair]:
    """All pairs of one split of a CUHK-CR set, sorted by file name.

    Args:
        root: the set folder (CUHK-CR1 or CUHK-CR2), holding ``train/`` and ``test/``.
        split: ``train`` or ``test``.
        nir: also pair the NIR images.

    Raises:
        DatasetError: the folders are missing or a partner file is.
    """
    folder = root / split
    pairs = []
    for cloudy in list_files(folder / "cloud"):
        pair = CUHKCRPair(
            cloudy.stem,
            cloudy,
            folder / "label" / cloudy.name,
            folder / "nir" / "cloud" / cloudy.name if nir else None,
            folder / "nir" / "label" / cloudy.name if nir else None,
        )
        for path in (pair.target, pair.cloudy_nir, pair.target_nir):
            if path is not None and not path.is_file():
                raise DatasetError(f"{path} is missing: CUHK-CR pairs {cloudy} with it (set nir=False for RGB only)")
        pairs.append(pair)
    if not pairs:
        raise DatasetError(f"no images in {folder / 'cloud'}")
    return pairs


def _read_bands(rgb: Path, nir: Path | None) -> torch.Tensor:
    """(3 or 4, H, W) reflectance 0-1: the RGB image, plus channel 0 of the NIR image when given."""
    image = read_reflectance(rgb)[:3]
    if nir is not None:
        image = np.concatenate([image, read_reflectance(nir)[:1]])
    return torch.from_numpy(np.ascontiguousarray(image))


class CUHKCR(Dataset[dict[str, Any]]):
    """CUHK-CR pairs as tensors.

    Each item is a dict: ``cloudy`` and ``target`` (4, H, W) float32 0-1 (R, G, B, NIR; 3 bands when
    ``nir=False``), and ``name``.

    Args:
        root: the set folder (CUHK-CR1 or CUHK-CR2).
        split: ``train`` or ``test`` (the released split).
        nir: stack the NIR band as the fourth band.
        transform: applied to each item dict, e.g. ``RandomDihedral()``.
    """

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        nir: bool = True,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        self.pairs = find_pairs(Path(root), split, nir)
        self.transform = transform

    @property
    def places(self) -> list[str]:
        """One place per pair (CUHK-CR records none), for ``split_by_place``."""
        return [pair.name for pair in self.pairs]

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Read one pair."""
        pair = self.pairs[index]
        sample: dict[str, Any] = {
            "cloudy": _read_bands(pair.cloudy, pair.cloudy_nir),
            "target": _read_bands(pair.target, pair.target_nir),
            "name": pair.name,
        }
        return self.transform(sample) if self.transform is not None else sample
