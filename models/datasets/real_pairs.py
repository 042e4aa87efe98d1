"""Real cloudy / cloud-free Sentinel-2 pairs and one real time series, split so evaluation scenes stay unseen.

The pairs are SEN12MS-CR patches, the series SEN12MS-CR-TS dates of one place.

::

    <data>/sen12ms-cr-pairs/manifest.csv              one row per patch: patch, scene, ...
    <data>/sen12ms-cr-pairs/pairs/{cloudy,clear}/<patch>.tif   13-band L1C uint16 x 10000, one grid per pair
    <data>/sen12ms-cr-ts/<series>/ImgNo_<nn>_<date>.tif       one place on 20 dates, one grid

Patches of one scene share a date and look alike, so the split is by scene, never by patch: every scene in
:data:`HELD_OUT_PAIR_SCENES` is for evaluation only (``eval-sets s2-real-pairs``), the rest may be trained on.
The time series is never trained on; :data:`SERIES_ITEMS` fixes which dates make each evaluation item.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.datasets.rasters import DatasetError, read_reflectance

PAIRS_DIR = Path("sen12ms-cr-pairs")
SERIES_DIR = Path("sen12ms-cr-ts") / "ROIs2017_146_patch_0"
# Thin haze over farmland and towns, haze in winter, open water: evaluation only. The one thick-cumulus scene
# (ROIs1970_fall_136, 15 patches) is left to training, where real thick clouds are rarest; real thick clouds for
# evaluation come from the time series (SERIES_ITEMS) and the glf-cr triplet.
HELD_OUT_PAIR_SCENES = (
    "ROIs1868_summer_100",
    "ROIs1868_summer_101",
    "ROIs2017_winter_102",
    "ROIs1868_summer_135",
    "ROIs1970_fall_148",
)
# A "clear" image whose cirrus band B10 has a median above this (DN) is itself under thin cirrus: 12 of the 15
# training patches of ROIs1970_fall_136 (B10 423-460 DN, blue B2 ~1450 DN) against 7-26 DN for truly clear
# scenes. Trained on, such targets teach a network to paint haze into the clouds it fills.
MAX_CLEAR_B10_DN = 100


def clear_target(row: dict[str, str]) -> bool:
    """Whether a manifest row's cloud-free image is free of cirrus too (its B10 median under MAX_CLEAR_B10_DN)."""
    return float(row["clear_B10_median"]) < MAX_CLEAR_B10_DN


# (cloudy date, further cloudy dates, clear target date), as ImgNo indices of the series: the target is a clear
# date 10-35 days from the cloudy one and never one of the inputs.
SERIES_ITEMS = (
    (0, (1, 2), 3),
    (5, (6, 7), 4),
    (10, (11, 12), 9),
    (15, (16, 17), 14),
)


@dataclass(frozen=True)
class RealPair:
    """One real pair: ``cloudy`` and ``clear`` (13, H, W) reflectance 0-1 on one grid, its patch and scene."""

    patch: str
    scene: str
    cloudy: np.ndarray
    clear: np.ndarray


def pair_rows(root: Path) -> list[dict[str, str]]:
    """The manifest's rows (``patch``, ``scene``, ...), in file order."""
    manifest = root / PAIRS_DIR / "manifest.csv"
    if not manifest.is_file():
        raise DatasetError(f"{manifest} is missing; the real pairs folder holds manifest.csv and pairs/")
    with open(manifest, newline="") as handle:
        return list(csv.DictReader(handle))


def pair_paths(root: Path, patch: str) -> tuple[Path, Path]:
    """The cloudy and clear files of one patch."""
    folder = root / PAIRS_DIR / "pairs"
    return folder / "cloudy" / f"{patch}.tif", folder / "clear" / f"{patch}.tif"


def is_held_out(scene: str) -> bool:
    """Whether a scene is kept for evaluation (never trained on)."""
    return scene in HELD_OUT_PAIR_SCENES


def load_real_pairs(root: Path, held_out: bool = False, clear_targets_only: bool = False) -> list[RealPair]:
    """The training pairs (``held_out=False``) or the evaluation pairs (``held_out=True``) of the data folder.

    ``clear_targets_only`` leaves out pairs whose cloud-free image is under cirrus (:func:`clear_target`).
    """
    pairs = []
    for row in pair_rows(root):
        if is_held_out(row["scene"]) != held_out or (clear_targets_only and not clear_target(row)):
            continue
        cloudy, clear = pair_paths(root, row["patch"])
        pairs.append(RealPair(row["patch"], row["scene"], read_reflectance(cloudy), read_reflectance(clear)))
    return pairs


def series_dates(root: Path) -> list[Path]:
    """The series' files in date order (ImgNo 0, 1, ...)."""
    paths = sorted((root / SERIES_DIR).glob("ImgNo_*.tif"))
    if not paths:
        raise DatasetError(f"{root / SERIES_DIR} holds no ImgNo_*.tif dates")
    return paths
