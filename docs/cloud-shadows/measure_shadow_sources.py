"""Measure the local fill with and without its likely cloud shadows as sources, on real and simulated clouds.

Run from the repository root, after ``python -m backend eval-sets --out runs/eval-sets`` (and, for the training
pairs, a ``cloudy/`` + ``target/`` folder of them, see README.md beside this script):

    PYTHONPATH=. .venv/bin/python docs/cloud-shadows/measure_shadow_sources.py runs/eval-sets/s2-real-pairs ...

For every folder it prints the mean PSNR (dB) over the whole image and under the s2cloudless mask of: the plain
local fill, the fill without shadow sources at a grid of reach / darkness settings, and the best any fill that
keeps clear pixels could do (the target pasted under the mask), beside the naive fill (each band's clear median).
Images without cloud count in the whole-image means (as in ``backend eval``), not in the under-cloud ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import models.cloud_fill as cloud_fill
from backend.evaluation import measure_clouds
from models.baselines import naive_fill
from models.cloudmask import default_bands
from models.datasets.paired import find_paired
from models.datasets.rasters import read_reflectance
from models.metrics import region_metrics

SETTINGS = [(None, None)] + [(reach, darkness) for reach in (20, 40, 80) for darkness in (0.5, 0.6, 0.7)]
# (cloudy, target, cloud mask) of one image; a prediction from those three.
Image = tuple[np.ndarray, np.ndarray, np.ndarray]
Predict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def images(folder: Path) -> list[Image]:
    """Every pair of an evaluation folder with its s2cloudless mask."""
    found = []
    for item in find_paired(folder):
        cloudy = read_reflectance(item.cloudy)
        mask, _ = measure_clouds(cloudy)
        found.append((cloudy, read_reflectance(item.target), mask))
    return found


def fill(cloudy: np.ndarray, mask: np.ndarray, reach: int | None, darkness: float | None) -> np.ndarray:
    """The plain local fill (reach None), or the fill without shadow sources at that reach and darkness."""
    image = torch.from_numpy(cloudy)[None]
    holes = torch.from_numpy(mask.astype(np.float32))[None, None]
    if reach is None or darkness is None:
        return cloud_fill.local_fill(image, holes)[0].numpy()
    cloud_fill.SHADOW_REACH, cloud_fill.SHADOW_DARKNESS = reach, darkness
    return cloud_fill.fill_clouds(image, holes, default_bands(cloudy.shape[0]))[0].numpy()


def mean_psnr(found: list[Image], predict: Predict) -> str:
    """Mean PSNR whole / under cloud; a perfect fill scores infinite dB, so the means are over the finite values."""
    scores = [region_metrics(predict(cloudy, mask, target), target, mask) for cloudy, target, mask in found]
    whole, cloud = (np.array([s[region]["psnr"] for s in scores]) for region in ("all", "cloud"))
    return " / ".join(f"{v[np.isfinite(v)].mean():.2f}" if np.isfinite(v).any() else "inf" for v in (whole, cloud))


def setting_fill(reach: int | None, darkness: float | None) -> Predict:
    """The fill at one setting as a prediction."""
    return lambda cloudy, mask, _target: fill(cloudy, mask, reach, darkness)


def main(folders: list[str]) -> None:
    """Print the table of every folder."""
    for folder in folders:
        found = images(Path(folder))
        cloudy = sum(bool(mask.any()) for _, _, mask in found)
        print(f"== {folder}: {len(found)} images, {cloudy} with cloud (PSNR whole / under cloud)")
        print(f"  {'naive fill':45s} {mean_psnr(found, lambda c, m, _: naive_fill(c, m))}")
        for reach, darkness in SETTINGS:
            label = "plain local fill" if reach is None else f"shadows left out, reach {reach}, darkness {darkness}"
            print(f"  {label:45s} {mean_psnr(found, setting_fill(reach, darkness))}", flush=True)
        bound = mean_psnr(found, lambda c, m, t: np.where(m[None], t, c))
        print(f"  {'target under the mask (upper bound)':45s} {bound}")


if __name__ == "__main__":
    main(sys.argv[1:])
