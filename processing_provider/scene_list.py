"""The scene list of ``python -m backend batch`` (a CSV file: ``optical,sar,output``): written from a folder, counted.

A folder of optical rasters becomes such a list (one scene per raster, without Sentinel-1; earlier outputs, named
stem + ``_cloudfree.tif`` by the batch command, left out). Counting a list's rows gives the progress bar its total
until the backend counts the scenes itself.
"""

from __future__ import annotations

import csv
from pathlib import Path

from qgis.core import QgsProcessingException

from ..backend.protocol import BATCH_OUTPUT_SUFFIX

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".png")
OUTPUT_SUFFIX = BATCH_OUTPUT_SUFFIX  # the batch command's default output name: stem + this


def folder_scene_list(folder: Path, target: Path) -> Path:
    """Write the scene list of a folder's optical rasters (earlier outputs left out) to ``target``.

    Raises:
        QgsProcessingException: the folder holds no raster.
    """
    rasters = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in RASTER_SUFFIXES and not path.name.endswith(OUTPUT_SUFFIX)
    )
    if not rasters:
        suffixes = ", ".join(RASTER_SUFFIXES)
        raise QgsProcessingException(f"The folder {folder} holds no optical raster ({suffixes}).")
    with open(target, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["optical", "sar", "output"])
        writer.writerows([str(path), "", ""] for path in rasters)
    return target


def count_rows(csv_file: Path) -> int:
    """How many scenes a scene list seems to hold (for the progress bar until the backend says)."""
    try:
        with open(csv_file, encoding="utf-8-sig", newline="") as handle:
            return max(0, sum(1 for row in csv.reader(handle) if any(cell.strip() for cell in row)) - 1)
    except (OSError, UnicodeDecodeError, csv.Error):
        return 0
