"""Dataset readers for training and evaluation: SEN12MS-CR, Sen2_MTC, RICE, CUHK-CR and plain paired folders.

Every reader returns dicts of (C, H, W) float32 tensors on the 0-1 scale (reflectance, 8-bit value / 255, or SAR
dB mapped onto [0, 1]) plus a ``name``, and exposes ``places`` for ``split_by_place``.
"""

from models.datasets.cuhkcr import CUHKCR
from models.datasets.paired import PairedItem, find_paired
from models.datasets.rasters import DatasetError, read_reflectance, read_sar
from models.datasets.rice import RICE
from models.datasets.sen2mtc import Sen2MTC
from models.datasets.sen12mscr import Sen12MSCR
from models.datasets.split import split_by_place
from models.datasets.transforms import RandomDihedral, dihedral

__all__ = [
    "CUHKCR",
    "RICE",
    "DatasetError",
    "PairedItem",
    "RandomDihedral",
    "Sen2MTC",
    "Sen12MSCR",
    "dihedral",
    "find_paired",
    "read_reflectance",
    "read_sar",
    "split_by_place",
]
