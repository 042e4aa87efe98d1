"""Real pairs: the split by scene, and training pairs whose cloud-free image is under cirrus left out."""

import numpy as np
import rasterio
from rasterio.transform import Affine

from models.datasets.real_pairs import HELD_OUT_PAIR_SCENES, MAX_CLEAR_B10_DN, load_real_pairs


def _tif(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=4, height=4, count=13, dtype="uint16", crs="EPSG:32631")
    with rasterio.open(path, "w", transform=Affine(10, 0, 0, 0, -10, 0), **profile) as dst:
        dst.write(np.full((13, 4, 4), value, np.uint16))


def _folder(root):
    rows = [("clear_p1", "ROIs1970_fall_136", 10), ("cirrus_p2", "ROIs1970_fall_136", MAX_CLEAR_B10_DN + 300),
            ("kept_p3", HELD_OUT_PAIR_SCENES[0], 12)]  # fmt: skip
    pairs = root / "sen12ms-cr-pairs"
    pairs.mkdir(parents=True)
    lines = "".join(f"{patch},{scene},{b10}\n" for patch, scene, b10 in rows)
    (pairs / "manifest.csv").write_text("patch,scene,clear_B10_median\n" + lines)
    for patch, _, _ in rows:
        _tif(pairs / "pairs" / "cloudy" / f"{patch}.tif", 5000)
        _tif(pairs / "pairs" / "clear" / f"{patch}.tif", 500)


def test_training_pairs_leave_out_held_out_scenes_and_if_asked_cirrus_targets(tmp_path):
    _folder(tmp_path)
    assert [pair.patch for pair in load_real_pairs(tmp_path)] == ["clear_p1", "cirrus_p2"]
    assert [pair.patch for pair in load_real_pairs(tmp_path, clear_targets_only=True)] == ["clear_p1"]
    held = load_real_pairs(tmp_path, held_out=True)
    assert [pair.patch for pair in held] == ["kept_p3"] and held[0].cloudy.shape == (13, 4, 4)
