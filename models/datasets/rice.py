"""RICE (Lin et al. 2019): cloudy / cloud-free 8-bit RGB pairs (RICE1 from Google Earth, RICE2 from Landsat 8).

Two layouts are read:

- folders, as in the RICE release and DE's loader: ``root/cloud/<name>`` and ``root/label/<name>`` (RICE2's
  ``mask/`` folder, if present, is ignored);
- flat pix2pix-style names, as in cloud-removal-deploy and ``shared/data/rice2``: ``root/<id>_real_A.png`` (cloudy)
  and ``root/<id>_real_B.png`` (cloud-free).

RICE has no official split (DE's author: "random") and no place ids, so each pair is its own place; pass
``places`` to ``split_by_place`` for a deterministic split.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from models.datasets.rasters import IMAGE_SUFFIXES, DatasetError, list_files, read_reflectance

CLOUDY_SUFFIX = "_real_A"
CLEAR_SUFFIX = "_real_B"


def find_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """(name, cloudy, cloud-free) for every pair under ``root``, sorted by name (numerically where names are ids).

    Raises:
        DatasetError: neither layout is found, or a cloudy image has no cloud-free partner.
    """
    if (root / "cloud").is_dir() and (root / "label").is_dir():
        pairs = [(path.stem, path, root / "label" / path.name) for path in list_files(root / "cloud", IMAGE_SUFFIXES)]
    else:
        pairs = [
            (path.stem[: -len(CLOUDY_SUFFIX)], path, path.with_name(path.name.replace(CLOUDY_SUFFIX, CLEAR_SUFFIX)))
            for path in list_files(root, IMAGE_SUFFIXES)
            if path.stem.endswith(CLOUDY_SUFFIX)
        ]
    if not pairs:
        raise DatasetError(
            f"no RICE pairs under {root}; expected cloud/ and label/ folders, or <id>_real_A.png with <id>_real_B.png"
        )
    for _name, _cloudy, clear in pairs:
        if not clear.is_file():
            raise DatasetError(f"{clear} is missing: every cloudy image needs its cloud-free partner")
    # Numeric ids sort as numbers (2 before 10), any other names after them, alphabetically.
    return sorted(pairs, key=lambda pair: (0, int(pair[0]), "") if pair[0].isdigit() else (1, 0, pair[0]))


class RICE(Dataset[dict[str, Any]]):
    """RICE pairs as tensors: ``cloudy`` and ``target`` (3, H, W) float32 RGB 0-1 (value / 255), and ``name``.

    Args:
        root: a RICE1 or RICE2 folder in either layout (see the module docstring).
        transform: applied to each item dict, e.g. ``RandomDihedral()``.
    """

    def __init__(self, root: Path | str, transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.pairs = find_pairs(Path(root))
        self.transform = transform

    @property
    def places(self) -> list[str]:
        """One place per pair (RICE records none), for ``split_by_place``."""
        return [name for name, _cloudy, _clear in self.pairs]

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Read one pair."""
        name, cloudy, clear = self.pairs[index]
        sample: dict[str, Any] = {
            "cloudy": torch.from_numpy(read_reflectance(cloudy)),
            "target": torch.from_numpy(read_reflectance(clear)),
            "name": name,
        }
        return self.transform(sample) if self.transform is not None else sample
