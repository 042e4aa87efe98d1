"""A plain evaluation folder: ``cloudy/``, ``target/`` and optionally ``sar/``, paired by file name.

::

    folder/cloudy/<name>.tif    Sentinel-2 13-band L1C or 12-band L2A, uint16 reflectance x 10000
    folder/target/<name>.tif    the cloud-free image of the same grid
    folder/sar/<name>.tif       optional: Sentinel-1 [VV, VH] in dB on the same grid

or the same with 8-bit RGB PNGs (no ``sar/``). It is the simplest layout a user can build from any dataset, and
what ``python -m backend eval`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.datasets.rasters import DatasetError, list_files

CLOUDY_DIR = "cloudy"
TARGET_DIR = "target"
SAR_DIR = "sar"


@dataclass(frozen=True)
class PairedItem:
    """One image of an evaluation folder: its ``name`` (file name), ``cloudy``, ``target`` and ``sar`` (or None)."""

    name: str
    cloudy: Path
    target: Path
    sar: Path | None


def find_paired(root: Path) -> list[PairedItem]:
    """Every cloudy image of ``root/cloudy`` with its target (and SAR image, when ``root/sar`` exists).

    Raises:
        DatasetError: a folder is missing, it holds no images, or a cloudy image has no target or no SAR partner.
    """
    for needed in (CLOUDY_DIR, TARGET_DIR):
        if not (root / needed).is_dir():
            raise DatasetError(
                f"{root / needed} is missing; an evaluation folder holds cloudy/ and target/ (and optionally sar/) "
                "with matching file names"
            )
    sar_dir = root / SAR_DIR
    items = []
    for cloudy in list_files(root / CLOUDY_DIR):
        target = root / TARGET_DIR / cloudy.name
        if not target.is_file():
            raise DatasetError(f"{cloudy.name} is in cloudy/ but not in target/; every cloudy image needs its target")
        sar = sar_dir / cloudy.name if sar_dir.is_dir() else None
        if sar is not None and not sar.is_file():
            raise DatasetError(f"{cloudy.name} is in cloudy/ but not in sar/; give every image its SAR or none")
        items.append(PairedItem(cloudy.name, cloudy, target, sar))
    if not items:
        raise DatasetError(f"{root / CLOUDY_DIR} holds no .tif or .png images")
    return items
