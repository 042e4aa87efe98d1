"""SEN12MS-CR (Ebel et al. 2021): Sentinel-1, cloudy Sentinel-2 and cloud-free Sentinel-2 triplets.

Layout as downloaded from mediaTUM (doi 10.14459/2020mp1554803), one folder per season and modality::

    root/ROIs1158_spring_s1/s1_106/ROIs1158_spring_s1_106_p407.tif
    root/ROIs1158_spring_s2/s2_106/ROIs1158_spring_s2_106_p407.tif
    root/ROIs1158_spring_s2_cloudy/s2_cloudy_106/ROIs1158_spring_s2_cloudy_106_p407.tif

A patch is found through its S1 file and paired by season, scene and patch number, which is what UnCRtainTS's
``/s1`` -> ``/s2``, ``_s1`` -> ``_s2`` path substitution does. Scaling follows the DB-CR paper (Sec. IV-A):
S2 clipped to [0, 10000] / 10000; VV clipped to [-25, 0] and VH to [-32.5, 0], each onto [0, 1].

The split is UnCRtainTS's: 10 test scenes, 10 validation scenes, every other scene trains.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from models.datasets.rasters import DatasetError, read_reflectance, read_sar

SPLITS = ("train", "val", "test", "all")
# UnCRtainTS data/dataLoader.py, as "<season>_s1/s1_<scene>".
UNCRTAINTS_VAL = frozenset(
    {
        "ROIs2017_winter_s1/s1_22",
        "ROIs1868_summer_s1/s1_19",
        "ROIs1970_fall_s1/s1_65",
        "ROIs1158_spring_s1/s1_17",
        "ROIs2017_winter_s1/s1_107",
        "ROIs1868_summer_s1/s1_80",
        "ROIs1868_summer_s1/s1_127",
        "ROIs2017_winter_s1/s1_130",
        "ROIs1868_summer_s1/s1_17",
        "ROIs2017_winter_s1/s1_84",
    }
)
UNCRTAINTS_TEST = frozenset(
    {
        "ROIs1158_spring_s1/s1_106",
        "ROIs1158_spring_s1/s1_123",
        "ROIs1158_spring_s1/s1_140",
        "ROIs1158_spring_s1/s1_31",
        "ROIs1158_spring_s1/s1_44",
        "ROIs1868_summer_s1/s1_119",
        "ROIs1868_summer_s1/s1_73",
        "ROIs1970_fall_s1/s1_139",
        "ROIs2017_winter_s1/s1_108",
        "ROIs2017_winter_s1/s1_63",
    }
)
_S1_NAME = re.compile(r"^(?P<season>ROIs\d+_[a-z]+)_s1_(?P<scene>\d+)_p(?P<patch>\d+)\.tif$")


@dataclass(frozen=True)
class Sen12MSCRPatch:
    """The three files of one patch.

    Attributes:
        season: the season folder prefix, e.g. ``ROIs1158_spring``.
        scene: the scene number, e.g. ``106``.
        patch: the patch number within the scene, e.g. ``407``.
        s1: Sentinel-1 [VV, VH] dB GeoTIFF.
        s2: cloud-free Sentinel-2 L1C GeoTIFF (the target).
        s2_cloudy: cloudy Sentinel-2 L1C GeoTIFF (the input).
    """

    season: str
    scene: str
    patch: str
    s1: Path
    s2: Path
    s2_cloudy: Path

    @property
    def place(self) -> str:
        """The scene this patch belongs to, the unit of any split (``ROIs1158_spring/106``)."""
        return f"{self.season}/{self.scene}"

    @property
    def name(self) -> str:
        """A unique, readable id: ``ROIs1158_spring_106_p407``."""
        return f"{self.season}_{self.scene}_p{self.patch}"


def uncrtaints_split(patch: Sen12MSCRPatch) -> str:
    """The UnCRtainTS split (``train``, ``val`` or ``test``) of a patch."""
    key = f"{patch.season}_s1/s1_{patch.scene}"
    if key in UNCRTAINTS_TEST:
        return "test"
    if key in UNCRTAINTS_VAL:
        return "val"
    return "train"


def find_patches(root: Path) -> list[Sen12MSCRPatch]:
    """All complete triplets under a SEN12MS-CR root, sorted by season, scene and patch number.

    S1 files whose cloudy or cloud-free partner is missing are left out with a warning naming one of them.

    Raises:
        DatasetError: no S1 file in the expected layout was found at all.
    """
    found: list[Sen12MSCRPatch] = []
    incomplete: list[Path] = []
    for s1 in root.glob("ROIs*_s1/s1_*/*.tif"):
        match = _S1_NAME.match(s1.name)
        if match is None:
            continue
        season, scene, patch = match["season"], match["scene"], match["patch"]
        s2 = root / f"{season}_s2" / f"s2_{scene}" / f"{season}_s2_{scene}_p{patch}.tif"
        cloudy = root / f"{season}_s2_cloudy" / f"s2_cloudy_{scene}" / f"{season}_s2_cloudy_{scene}_p{patch}.tif"
        if s2.is_file() and cloudy.is_file():
            found.append(Sen12MSCRPatch(season, scene, patch, s1, s2, cloudy))
        else:
            incomplete.append(s1)
    if not found and not incomplete:
        raise DatasetError(
            f"no SEN12MS-CR patches under {root}; expected ROIs<id>_<season>_s1/s1_<scene>/"
            "ROIs<id>_<season>_s1_<scene>_p<patch>.tif with matching _s2 and _s2_cloudy folders"
        )
    if incomplete:
        warnings.warn(
            f"{len(incomplete)} SEN12MS-CR patches lack a cloudy or cloud-free S2 file and were skipped "
            f"(e.g. {incomplete[0]})",
            stacklevel=2,
        )
    return sorted(found, key=lambda item: (item.season, int(item.scene), int(item.patch)))


class Sen12MSCR(Dataset[dict[str, Any]]):
    """SEN12MS-CR triplets as tensors.

    Each item is a dict: ``cloudy`` (13, H, W) and ``target`` (13, H, W) float32 reflectance 0-1, ``sar`` (2, H, W)
    float32 0-1 ([VV, VH]), and ``name`` (str).

    Args:
        root: the folder holding the ``ROIs*_s1``, ``ROIs*_s2`` and ``ROIs*_s2_cloudy`` folders.
        split: ``train``, ``val``, ``test`` (UnCRtainTS scenes) or ``all``.
        transform: applied to each item dict, e.g. ``RandomDihedral()`` for training.
    """

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        patches = find_patches(Path(root))
        self.patches = [patch for patch in patches if split == "all" or uncrtaints_split(patch) == split]
        self.transform = transform

    @property
    def places(self) -> list[str]:
        """The scene of each item, for ``split_by_place``."""
        return [patch.place for patch in self.patches]

    def __len__(self) -> int:
        """Number of patches in this split."""
        return len(self.patches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Read one triplet."""
        patch = self.patches[index]
        sample: dict[str, Any] = {
            "cloudy": torch.from_numpy(read_reflectance(patch.s2_cloudy)),
            "target": torch.from_numpy(read_reflectance(patch.s2)),
            "sar": torch.from_numpy(read_sar(patch.s1)),
            "name": patch.name,
        }
        return self.transform(sample) if self.transform is not None else sample
