"""Score temporal_fill's variants on the series (the only real multi-date set): how the default was chosen.

Run from the repository root: ``.venv/bin/python docs/training/diffcr-lite-temporal/measure_variants.py``. Each
variant fills the first date's s2cloudless clouds (as eval finds them) from date2/ and date3/; the scores are PSNR
over the whole image and under the cloud, and SAM under the cloud, against target/, means over the 4 items.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from models.cloudmask import cloud_mask
from models.datasets.rasters import read_reflectance
from models.metrics import region_metrics
from models.temporal_fill import COMBINES, MATCHINGS, temporal_fill

SERIES = Path("runs/eval-sets/s2-series")


def main() -> None:
    """Print one Markdown row per (dates, matching, combine)."""
    items = []
    for path in sorted((SERIES / "cloudy").glob("*.tif")):
        dates = [read_reflectance(SERIES / folder / path.name) for folder in ("cloudy", "date2", "date3")]
        items.append(
            (np.stack(dates), np.stack([cloud_mask(d) for d in dates]), read_reflectance(SERIES / "target" / path.name))
        )
    print("| dates | matching | combine | PSNR all | PSNR cloud | SAM cloud |")
    print("|---|---|---|---:|---:|---:|")
    for count, matching, combine in itertools.product((2, 3), MATCHINGS, COMBINES):
        scores = []
        for dates, masks, target in items:
            x = torch.from_numpy(np.nan_to_num(dates[:count]))[None].float()
            m = torch.from_numpy(masks[:count].astype(np.float32))[None, :, None]
            out = temporal_fill(x, m, combine=combine, matching=matching)[0].numpy()
            r = region_metrics(out, target, masks[0])
            scores.append((r["all"]["psnr"], r["cloud"]["psnr"], r["cloud"]["sam"]))
        a, c, s = np.nanmean(np.array(scores), axis=0)
        print(f"| {count} | {matching} | {combine} | {a:.2f} | {c:.2f} | {s:.2f} |")


if __name__ == "__main__":
    main()
