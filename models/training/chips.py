"""Real clear Sentinel-2 chips (with their Sentinel-1 where it exists) from the project's shared data folder.

Every chip is brought to the 13-band L1C layout at 10 m: per-band files at 20/60 m are resampled bilinearly, and
L2A chips get the constant B10 of :data:`models.card.MISSING_BAND_FILL`. Sources and licences are listed in the
data folder's README and in ``models/weights/NOTICE.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from models.card import MISSING_BAND_FILL, S1_BANDS, S1_DB_RANGES, S2_L1C_BANDS


@dataclass(frozen=True)
class Chip:
    """One clear scene: optical (13, H, W) reflectance, SAR (2, H, W) in [0, 1] or None, and its place."""

    optical: np.ndarray
    sar: np.ndarray | None
    place: str
    source: str


def scale_sar_db(db: np.ndarray) -> np.ndarray:
    """(2, H, W) VV, VH backscatter in dB -> [0, 1] with the DB-CR clipping ranges."""
    out = np.empty_like(db, dtype=np.float32)
    for index, band in enumerate(S1_BANDS):
        low, high = S1_DB_RANGES[band]
        out[index] = (np.clip(np.nan_to_num(db[index], nan=low), low, high) - low) / (high - low)
    return out


def read_stack(path: Path, band_order: tuple[str, ...] = S2_L1C_BANDS) -> np.ndarray:
    """A multi-band uint16 GeoTIFF (reflectance x 10000) -> (13, H, W) float32 in L1C band order."""
    with rasterio.open(path) as dataset:
        data = dataset.read().astype(np.float32) / 10000.0
    return data[[band_order.index(band) for band in S2_L1C_BANDS]]


def read_band_files(folder: Path, pattern: str) -> np.ndarray:
    """Per-band files (``pattern`` formatted with the band name, e.g. ``B02``) -> (13, H, W) at the 10 m size."""

    def band_path(band: str) -> Path:
        return folder / pattern.format(band=band if band == "B8A" else f"B{int(band[1:]):02d}")

    with rasterio.open(band_path("B2")) as reference:
        shape = (reference.height, reference.width)
    bands = []
    for band in S2_L1C_BANDS:
        path = band_path(band)
        if not path.exists():
            bands.append(np.full(shape, MISSING_BAND_FILL[band], dtype=np.float32))
            continue
        with rasterio.open(path) as dataset:
            data = dataset.read(1, out_shape=shape, resampling=Resampling.bilinear)
        bands.append(data.astype(np.float32) / 10000.0)
    return np.stack(bands)


def read_sar_pair(vv: Path, vh: Path) -> np.ndarray:
    """Two single-band dB files -> (2, H, W) in [0, 1]."""
    with rasterio.open(vv) as a, rasterio.open(vh) as b:
        return scale_sar_db(np.stack([a.read(1), b.read(1)]).astype(np.float32))


def sen12ms_chips(root: Path) -> list[Chip]:
    """SEN12MS-CR clear S2 patches (13-band L1C) with their S1 where present (excludes the glf-cr test triplet)."""
    chips = []
    folder = root / "sen12ms-cr" / "dsen2cr-dsp"
    for s2_path in sorted((folder / "s2_cloudFree").glob("*.tif")):
        s1_path = folder / "s1" / s2_path.name
        sar = None
        if s1_path.exists():
            with rasterio.open(s1_path) as dataset:
                sar = scale_sar_db(dataset.read().astype(np.float32))
        chips.append(Chip(read_stack(s2_path), sar, s2_path.stem.rsplit("_", 1)[0], "SEN12MS-CR"))
    for s2_path in sorted((root / "major-tom-and-sen12ms-cr-ts" / "big-gap").glob("*.tif")):
        chips.append(Chip(read_stack(s2_path), None, "ROIs1970_21", "SEN12MS-CR-TS"))
    return chips


def major_tom_chips(root: Path) -> list[Chip]:
    """Major-TOM L2A cells (Spain, two dates; Laos), 1068 x 1068 at 10 m, no S1."""
    folders = sorted((root / "major-tom-and-sen12ms-cr-ts" / "small-gap").glob("*/*/"))
    folders += sorted((root / "rico-hdl" / "Major-TOM-Core" / "S2L2A").glob("*/*/*/"))
    return [Chip(read_band_files(f, "{band}.tif"), None, f.parent.name, "Major-TOM") for f in folders]


def bigearthnet_chips(root: Path) -> list[Chip]:
    """BigEarthNet L2A patches (120 x 120) with their co-registered S1 where the partner exists."""
    base = root / "bigearthnet"
    partners = {}
    for meta in (base / "S1").glob("*/*_labels_metadata.json"):
        partner = json.loads(meta.read_text())["corresponding_s2_patch"]
        partners[partner] = meta.parent
    chips = []
    for folder in sorted((base / "S2").iterdir()):
        optical = read_band_files(folder, folder.name + "_{band}.tif")
        sar = None
        if folder.name in partners:
            s1 = partners[folder.name]
            sar = read_sar_pair(s1 / f"{s1.name}_VV.tif", s1 / f"{s1.name}_VH.tif")
        place = "_".join(folder.name.split("_")[-2:])
        chips.append(Chip(optical, sar, place, "BigEarthNet"))
    return chips


EUROSAT_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "B8A")


def eurosat_chips(root: Path) -> list[Chip]:
    """EuroSAT-MS 64 x 64 L1C chips (their files put B8A last)."""
    paths = sorted((root / "rico-hdl" / "EuroSAT_MS").glob("*/*.tif"))
    return [Chip(read_stack(p, EUROSAT_BANDS), None, p.stem, "EuroSAT") for p in paths]


def load_chips(root: Path) -> list[Chip]:
    """Every clear chip the shared data folder holds."""
    return sen12ms_chips(root) + major_tom_chips(root) + bigearthnet_chips(root) + eurosat_chips(root)


def split_by_place(chips: list[Chip], held_out: tuple[str, ...]) -> tuple[list[Chip], list[Chip]]:
    """Training and validation chips; a place is wholly on one side, so validation is never seen in training."""
    train = [chip for chip in chips if chip.place not in held_out]
    validation = [chip for chip in chips if chip.place in held_out]
    return train, validation
