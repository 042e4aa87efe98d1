"""Sen2_MTC (CTGAN, Huang & Wu 2022): three cloudy Sentinel-2 dates and one cloud-free image per patch.

Layout, as DiffCR's ``Sen2_MTC_New_Multi`` reads it::

    root/train.txt, root/val.txt, root/test.txt           tile names, one per line
    root/Sen2_MTC/<tile>/cloud/<id>_0.tif, <id>_1.tif, <id>_2.tif
    root/Sen2_MTC/<tile>/cloudless/<id>.tif

Each TIFF holds 4 bands, R, G, B, NIR (DiffCR keeps the first three as RGB), as reflectance x 10000. DiffCR divides
by 10000 without clipping; we clip to [0, 1] like every other reader here, so all datasets share one scale.
The split files list tiles, so the official split already holds out places.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from models.datasets.rasters import DatasetError, read_reflectance

SPLITS = ("train", "val", "test")
DATES = 3


@dataclass(frozen=True)
class Sen2MTCPatch:
    """The files of one patch: ``tile``, ``name`` (the id), three ``cloudy`` dates and the ``target``."""

    tile: str
    name: str
    cloudy: tuple[Path, ...]
    target: Path


def read_tiles(root: Path, split: str) -> list[str]:
    """The tile names listed in ``root/<split>.txt`` (blank lines ignored)."""
    listing = root / f"{split}.txt"
    if not listing.is_file():
        raise DatasetError(f"{listing} is missing; Sen2_MTC lists the tiles of each split in train/val/test.txt")
    return [line.strip() for line in listing.read_text().splitlines() if line.strip()]


def find_patches(root: Path, split: str) -> list[Sen2MTCPatch]:
    """All patches of the tiles of one split, sorted by tile and id.

    Raises:
        DatasetError: a listed tile has no ``cloudless`` folder, or a cloudy date is missing.
    """
    patches: list[Sen2MTCPatch] = []
    for tile in read_tiles(root, split):
        folder = root / "Sen2_MTC" / tile
        if not (folder / "cloudless").is_dir():
            raise DatasetError(f"tile {tile} is listed in {split}.txt but {folder / 'cloudless'} is missing")
        for target in sorted((folder / "cloudless").glob("*.tif")):
            cloudy = tuple(folder / "cloud" / f"{target.stem}_{date}.tif" for date in range(DATES))
            missing = [path for path in cloudy if not path.is_file()]
            if missing:
                raise DatasetError(f"{missing[0]} is missing; each cloud-free patch needs {DATES} cloudy dates")
            patches.append(Sen2MTCPatch(tile, target.stem, cloudy, target))
    return patches


class Sen2MTC(Dataset[dict[str, Any]]):
    """Sen2_MTC patches as tensors.

    Each item is a dict: ``cloudy`` (4, H, W) the first cloudy date (DiffCR's single-image input), ``cloudy_dates``
    (3, 4, H, W) all three, ``target`` (4, H, W), all float32 reflectance 0-1 with bands R, G, B, NIR, and ``name``.

    Args:
        root: the folder holding ``train.txt`` and ``Sen2_MTC/``.
        split: ``train``, ``val`` or ``test``.
        transform: applied to each item dict, e.g. ``RandomDihedral()``.
    """

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        self.patches = find_patches(Path(root), split)
        self.transform = transform

    @property
    def places(self) -> list[str]:
        """The tile of each item, for ``split_by_place``."""
        return [patch.tile for patch in self.patches]

    def __len__(self) -> int:
        """Number of patches in this split."""
        return len(self.patches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Read one patch."""
        patch = self.patches[index]
        dates = torch.stack([torch.from_numpy(read_reflectance(path)) for path in patch.cloudy])
        sample: dict[str, Any] = {
            "cloudy": dates[0].clone(),
            "cloudy_dates": dates,
            "target": torch.from_numpy(read_reflectance(patch.target)),
            "name": f"{patch.tile}/{patch.name}",
        }
        return self.transform(sample) if self.transform is not None else sample
