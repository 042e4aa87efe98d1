"""A plain evaluation folder: ``cloudy/``, ``target/`` and optionally ``sar/``, paired by file name.

::

    folder/cloudy/<name>.tif    Sentinel-2 13-band L1C or 12-band L2A, uint16 reflectance x 10000
    folder/target/<name>.tif    the cloud-free image of the same grid
    folder/sar/<name>.tif       optional: Sentinel-1 [VV, VH] in dB on the same grid
    folder/mask/<name>.tif      optional: the cloudy image's real cloud mask, one band, nonzero where cloudy
    folder/date2/<name>.tif     optional: further cloudy dates of the same place and grid, in date order
    folder/date3/<name>.tif     (date2/, date3/, ...), for multi-date methods and the multi-date baselines

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
MASK_DIR = "mask"
# Further dates live in date2/, date3/, ... (the cloudy image is date 1).
EXTRA_DATE_PREFIX = "date"


@dataclass(frozen=True)
class PairedItem:
    """One image of an evaluation folder: its ``name`` (file name), ``cloudy``, ``target`` and ``sar`` (or None).

    ``mask`` is its real cloud mask where the folder has one; ``extra`` its further dates (date2/, date3/, ...).
    """

    name: str
    cloudy: Path
    target: Path
    sar: Path | None
    mask: Path | None = None
    extra: tuple[Path, ...] = ()


def extra_date_dirs(root: Path) -> list[Path]:
    """``root/date2``, ``root/date3``, ... as far as they go without a gap."""
    found: list[Path] = []
    while (root / f"{EXTRA_DATE_PREFIX}{len(found) + 2}").is_dir():
        found.append(root / f"{EXTRA_DATE_PREFIX}{len(found) + 2}")
    return found


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
    sar_dir, mask_dir, date_dirs = root / SAR_DIR, root / MASK_DIR, extra_date_dirs(root)
    items = []
    for cloudy in list_files(root / CLOUDY_DIR):
        target = root / TARGET_DIR / cloudy.name
        if not target.is_file():
            raise DatasetError(f"{cloudy.name} is in cloudy/ but not in target/; every cloudy image needs its target")
        sar = sar_dir / cloudy.name if sar_dir.is_dir() else None
        if sar is not None and not sar.is_file():
            raise DatasetError(f"{cloudy.name} is in cloudy/ but not in sar/; give every image its SAR or none")
        mask = mask_dir / cloudy.name if mask_dir.is_dir() else None
        if mask is not None and not mask.is_file():
            raise DatasetError(f"{cloudy.name} is in cloudy/ but not in mask/; give every image its mask or none")
        extra = tuple(folder / cloudy.name for folder in date_dirs)
        for path in extra:
            if not path.is_file():
                raise DatasetError(f"{cloudy.name} is in cloudy/ but not in {path.parent.name}/")
        items.append(PairedItem(cloudy.name, cloudy, target, sar, mask, extra))
    if not items:
        raise DatasetError(f"{root / CLOUDY_DIR} holds no .tif or .png images")
    return items
