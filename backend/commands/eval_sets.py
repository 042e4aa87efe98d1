"""``python -m backend eval-sets``: write the evaluation folders the shipped models are scored on.

Three folders in the layout ``python -m backend eval`` reads (``cloudy/``, ``target/``, optionally ``sar/``):

- ``s2-held-out``: the held-out places of the training split (``HELD_OUT_PLACES`` of the train command),
  whole chips under simulated clouds (satellite-cloud-generator shapes, real L1C cloud spectra), seeded. Chips that
  have no Sentinel-1 in the data folder get a SAR image holding the "no radar" code the models were trained with
  (:data:`models.card.SAR_MISSING`, the bottom of each dB range): not a measurement, the same absence training saw.
- ``glf-cr``: the one real SEN12MS-CR cloudy / cloud-free / S1 triplet.
- ``glf-cr-rgb``: the same triplet's B4, B3, B2 as 8-bit PNGs (reflectance 0-0.3 stretched to 0-255, the same
  stretch for cloudy and target), for DE, which restores 8-bit RGB.
- ``rice2-held-out``, ``rice2-512-held-out``: the RICE2 pairs (256², 512²) held out of DE's training (every 10th
  in id order), as 8-bit PNGs.
- ``s2-real-pairs``: the real SEN12MS-CR cloudy / cloud-free pairs of the held-out scenes
  (``models.datasets.real_pairs.HELD_OUT_PAIR_SCENES``, never trained on), files copied, a "no radar" SAR image.
- ``s2-series``: real multi-date inputs from the SEN12MS-CR-TS series (``SERIES_ITEMS``): a cloudy date, two more
  cloudy dates in ``date2/``, ``date3/`` and a clear date 10-35 days away as the target.

The chips are written as GeoTIFFs on a made-up 10 m UTM grid: the same grid for optical and SAR, so the backend's
S1 warp is the identity.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.transform import from_origin

from backend.protocol import EXIT_OK, EXIT_USER_ERROR
from models.card import S1_BANDS, S1_DB_RANGES, SAR_MISSING

if TYPE_CHECKING:
    from torch import Tensor

# A made-up grid: the chips carry no georeferencing of their own.
GRID_CRS = "EPSG:32631"
GRID_TRANSFORM = from_origin(500000.0, 4000000.0, 10.0, 10.0)
DN_SCALE = 10000.0
# Each held-out chip appears under this many cloud fields, each covering a share of it within COVER.
VERSIONS = 2
COVER = (0.2, 0.7)
VISIBLE_CHANGE = 0.02
# Reflectance shown as white in the 8-bit RGB version of glf-cr.
RGB_WHITE = 0.3
GLF_CR = Path("sen12ms-cr") / "glf-cr"


def sar_to_db(scaled: np.ndarray) -> np.ndarray:
    """(2, H, W) VV, VH on [0, 1] (the training chips' scaling) -> backscatter in dB."""
    out = np.empty_like(scaled, dtype=np.float32)
    for index, band in enumerate(S1_BANDS):
        low, high = S1_DB_RANGES[band]
        out[index] = low + scaled[index] * (high - low)
    return out


def write_geotiff(path: Path, data: np.ndarray, nodata: float | None = None) -> None:
    """(C, H, W) ``data`` as a GeoTIFF on the made-up grid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = data.shape
    profile = {
        "driver": "GTiff", "count": count, "height": height, "width": width, "dtype": data.dtype.name,
        "crs": GRID_CRS, "transform": GRID_TRANSFORM, "nodata": nodata,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)


def to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance 0-1 -> uint16 digital numbers (x 10000), as Sentinel-2 L1C products store it."""
    return np.clip(np.round(reflectance * DN_SCALE), 0, 65535).astype(np.uint16)


def cloud_cover(clear: np.ndarray, cloudy: np.ndarray) -> float:
    """Share of pixels the simulated cloud changed visibly (mean visible-band change above 0.02 reflectance)."""
    return float((np.abs(cloudy[1:4] - clear[1:4]).mean(axis=0) > VISIBLE_CHANGE).mean())


def write_s2_held_out(data_root: Path, out: Path, seed: int = 0) -> int:
    """The held-out chips, each under :data:`VERSIONS` simulated cloud fields; returns how many images."""
    import torch

    from backend.commands.train import HELD_OUT_PLACES
    from models.training.chips import load_chips, split_by_place
    from models.training.clouds import real_cloud_spectra

    _, chips = split_by_place(load_chips(data_root), HELD_OUT_PLACES)
    spectra = torch.from_numpy(real_cloud_spectra(data_root))
    rng = random.Random(seed)
    torch.manual_seed(seed)
    for index, chip in enumerate(chips):
        clear = torch.from_numpy(chip.optical)[None]
        height, width = chip.optical.shape[1:]
        scaled = chip.sar if chip.sar is not None else np.full((2, height, width), SAR_MISSING, np.float32)
        for version in range(VERSIONS):
            name = f"{chip.place}-{index}-{version}.tif"
            cloudy = cloudy_within_cover(clear, spectra, rng)
            write_geotiff(out / "cloudy" / name, to_dn(cloudy))
            write_geotiff(out / "target" / name, to_dn(chip.optical))
            write_geotiff(out / "sar" / name, sar_to_db(scaled))
    return len(chips) * VERSIONS


def cloudy_within_cover(clear: Tensor, spectra: Tensor, rng: random.Random, tries: int = 30) -> np.ndarray:
    """A simulated cloud field over ``clear`` (1, 13, H, W) covering :data:`COVER` of the chip (the last try else).

    Random fields are often faint or tiny; an evaluation needs clouds to remove and clear ground to keep.
    """
    from models.training.clouds import simulate_clouds

    cloudy = clear[0].numpy()
    for _ in range(tries):
        cloudy = simulate_clouds(clear, spectra, rng, clear_fraction=0.0)[0].clamp(0, 1).numpy()
        if COVER[0] <= cloud_cover(clear[0].numpy(), cloudy) <= COVER[1]:
            break
    return cloudy


def copy_glf_cr(data_root: Path, out: Path) -> int:
    """The real triplet, files copied unchanged; returns 1."""
    source = data_root / GLF_CR
    for folder, kind in (("cloudy", "s2_cloudy"), ("target", "s2_cloudfree"), ("sar", "s1")):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for path in sorted((source / kind).glob("*.tif")):
            shutil.copyfile(path, out / folder / path.name)
    return len(list((out / "cloudy").glob("*.tif")))


def to_eight_bit_rgb(dn: np.ndarray) -> np.ndarray:
    """(13, H, W) L1C digital numbers -> (H, W, 3) uint8 B4, B3, B2 with reflectance 0-RGB_WHITE as 0-255."""
    rgb = dn[[3, 2, 1]].astype(np.float32) / DN_SCALE
    return np.clip(np.round(rgb / RGB_WHITE * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def write_glf_cr_rgb(glf_cr: Path, out: Path) -> int:
    """The triplet's cloudy and target images as 8-bit RGB PNGs; returns how many pairs."""
    from PIL import Image

    count = 0
    for folder in ("cloudy", "target"):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for path in sorted((glf_cr / folder).glob("*.tif")):
            with rasterio.open(path) as dataset:
                Image.fromarray(to_eight_bit_rgb(dataset.read())).save(out / folder / f"{path.stem}.png")
            count += folder == "cloudy"
    return count


def copy_rice2_held_out(data_root: Path, out: Path, folder: str = "rice2") -> int:
    """DE's held-out pairs of a RICE folder (``models.training.rice_pairs.split_pairs``), copied; how many.

    A folder the data root lacks gives none.
    """
    from models.datasets.rice import find_pairs
    from models.training.rice_pairs import HOLD_OUT_EVERY

    if not (data_root / folder).is_dir():
        return 0
    pairs = find_pairs(data_root / folder)
    held = [pair for index, pair in enumerate(pairs) if index % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
    for name, cloudy, clear in held:
        for folder, path in (("cloudy", cloudy), ("target", clear)):
            (out / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / folder / f"{name}.png")
    return len(held)


def copy_real_pairs(data_root: Path, out: Path) -> int:
    """The held-out real pairs, files copied unchanged, each with a "no radar" SAR image; returns how many."""
    from models.datasets.real_pairs import is_held_out, pair_paths, pair_rows

    count = 0
    for row in pair_rows(data_root):
        if not is_held_out(row["scene"]):
            continue
        cloudy, clear = pair_paths(data_root, row["patch"])
        name = f"{row['patch']}.tif"
        for folder, path in (("cloudy", cloudy), ("target", clear)):
            (out / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / folder / name)
        _write_missing_sar(cloudy, out / "sar" / name)
        count += 1
    return count


def _write_missing_sar(optical: Path, path: Path) -> None:
    """A SAR image on ``optical``'s grid holding the "no radar" code the models were trained with."""
    with rasterio.open(optical) as dataset:
        profile = {"crs": dataset.crs, "transform": dataset.transform, "height": dataset.height, "width": dataset.width}
    missing = sar_to_db(np.full((2, profile["height"], profile["width"]), SAR_MISSING, np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", count=2, dtype="float32", **profile) as dataset:
        dataset.write(missing)


def copy_series(data_root: Path, out: Path) -> int:
    """The series' evaluation items (cloudy, date2, date3, target; files copied); returns how many."""
    from models.datasets.real_pairs import SERIES_ITEMS, series_dates

    dates = series_dates(data_root)
    for cloudy, extra, target in SERIES_ITEMS:
        name = f"{dates[cloudy].stem}.tif"
        sources = [("cloudy", cloudy), *((f"date{k + 2}", date) for k, date in enumerate(extra)), ("target", target)]
        for folder, index in sources:
            (out / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dates[index], out / folder / name)
        _write_missing_sar(dates[cloudy], out / "sar" / name)
    return len(SERIES_ITEMS)


def register(subparsers: Any) -> None:
    """Add the ``eval-sets`` subcommand."""
    parser = subparsers.add_parser(
        "eval-sets",
        help="write the evaluation folders (held-out chips, real pairs and series, glf-cr, held-out RICE2 pairs)",
        description="Write s2-held-out/, s2-real-pairs/, s2-series/, glf-cr/, glf-cr-rgb/, rice2-held-out/ and "
        "rice2-512-held-out/ under --out, each ready for `eval --data`.",
    )
    parser.add_argument("--data-root", type=Path, default=Path("..") / "shared" / "data", help="the shared data")
    parser.add_argument("--out", type=Path, default=Path("runs") / "eval-sets", help="where to write the folders")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated clouds")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Write the folders; 2 when the data folder is missing."""
    if not args.data_root.is_dir():
        print(f"error: data folder {args.data_root} does not exist; pass --data-root", flush=True)
        return EXIT_USER_ERROR
    if args.out.exists():
        shutil.rmtree(args.out)  # a rerun must not mix old and new images
    written = {
        "s2-held-out": write_s2_held_out(args.data_root, args.out / "s2-held-out", args.seed),
        "s2-real-pairs": copy_real_pairs(args.data_root, args.out / "s2-real-pairs"),
        "s2-series": copy_series(args.data_root, args.out / "s2-series"),
        "glf-cr": copy_glf_cr(args.data_root, args.out / "glf-cr"),
        "glf-cr-rgb": write_glf_cr_rgb(args.out / "glf-cr", args.out / "glf-cr-rgb"),
        "rice2-held-out": copy_rice2_held_out(args.data_root, args.out / "rice2-held-out"),
        "rice2-512-held-out": copy_rice2_held_out(args.data_root, args.out / "rice2-512-held-out", "rice2-512"),
    }
    for folder, count in written.items():
        print(f"{args.out / folder}: {count} images")
    return EXIT_OK
