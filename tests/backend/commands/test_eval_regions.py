"""``backend.evaluation``: scores under the cloud and on clear ground, the folder's own mask, the date baselines."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from backend.evaluation import FOLDER_MASK_LABEL, evaluate_folder
from models.baselines import BASELINES, CLOUDY_INPUT, LEAST_CLOUDY, MASKED_MEDIAN, NAIVE_FILL
from models.datasets.rasters import read_reflectance

SIZE = 32
TRANSFORM = Affine(10, 0, 500000, 0, -10, 5000000)


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=array.shape[0], dtype=array.dtype)
    with rasterio.open(path, "w", crs="EPSG:32631", transform=TRANSFORM, **profile) as dst:
        dst.write(array)


def _scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.array([1200, 900, 700, 500, 900, 2000, 2400, 2500, 2700, 900, 10, 1600, 800], np.float64)
    return (spectrum[:, None, None] * (1.0 + 0.2 * rng.standard_normal((SIZE, SIZE)))).clip(1, 10000).astype(np.uint16)


def _folder(root: Path, dates: bool = False) -> tuple[Path, np.ndarray]:
    """One image, cloudy (DN 6000) over its left 8 columns, with its real mask; optionally two more dates."""
    target = _scene(0)
    cloudy = target.copy()
    cloudy[:, :, :8] = 6000
    mask = np.zeros((1, SIZE, SIZE), np.uint8)
    mask[0, :, :8] = 1
    _write(root / "cloudy" / "a.tif", cloudy)
    _write(root / "target" / "a.tif", target)
    _write(root / "mask" / "a.tif", mask)
    if dates:
        second = target.copy()  # clear where the first date is cloudy, cloudy over the right half
        second[:, :, 16:] = 6000
        _write(root / "date2" / "a.tif", second)
        _write(root / "date3" / "a.tif", np.full_like(target, 6000))  # overcast
    return root, mask[0].astype(bool)


def test_the_cloudy_input_is_perfect_on_clear_ground_and_scored_apart_under_the_cloud(tmp_path):
    data, mask = _folder(tmp_path)
    report = evaluate_folder(data, None)
    assert report.cloud_mask == FOLDER_MASK_LABEL
    item = report.images[0]
    assert item.cloud_fraction == pytest.approx(mask.mean())
    cloudy, target = read_reflectance(data / "cloudy" / "a.tif"), read_reflectance(data / "target" / "a.tif")
    assert item.regions["clear"][CLOUDY_INPUT]["psnr"] == math.inf
    rmse = np.sqrt(np.mean((cloudy[:, mask].astype(np.float64) - target[:, mask]) ** 2))
    assert item.regions["cloud"][CLOUDY_INPUT]["psnr"] == pytest.approx(-20 * math.log10(rmse), rel=1e-6)
    # the naive fill keeps clear ground too, and beats the cloud under it
    assert item.regions["clear"][NAIVE_FILL]["psnr"] == math.inf
    assert item.regions["cloud"][NAIVE_FILL]["psnr"] > item.regions["cloud"][CLOUDY_INPUT]["psnr"] + 10
    assert report.region_mean["cloud"][NAIVE_FILL]["psnr"] == item.regions["cloud"][NAIVE_FILL]["psnr"]


def test_a_method_that_changes_clear_ground_loses_there_and_the_report_shows_it(tmp_path):
    data, _ = _folder(tmp_path)

    def darken(cloudy: Path, sar: Path | None) -> np.ndarray:
        target = read_reflectance(data / "target" / cloudy.name)
        return target * np.float32(0.8)  # a dimmed truth: wrong everywhere, clear ground included

    report = evaluate_folder(data, darken, tmp_path / "out", method="dark")
    clear = report.region_mean["clear"]
    assert clear["dark"]["psnr"] < clear[CLOUDY_INPUT]["psnr"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## Under clouds" in markdown and "## Clear pixels" in markdown
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["region_mean"]["clear"][CLOUDY_INPUT]["psnr"] == "inf"
    assert set(written["images"][0]["regions"]) == {"all", "cloud", "clear"}


def test_further_dates_add_the_least_cloudy_date_and_the_masked_median(tmp_path):
    data, _ = _folder(tmp_path, dates=True)
    seen = []

    def predict(cloudy: Path, sar: Path | None, extra=()) -> np.ndarray:
        seen.append([path.parent.name for path in extra])
        return read_reflectance(cloudy)

    report = evaluate_folder(data, predict, method="m")
    assert seen == [["date2", "date3"]]
    assert report.columns == (*BASELINES, LEAST_CLOUDY, MASKED_MEDIAN, "m")
    cloud = report.images[0].regions["cloud"]
    # date 2 is clear exactly where date 1 is cloudy, so the masked median restores the cloud's place perfectly
    # (s2cloudless finds date 2's and date 3's clouds; date 1 uses the folder's mask)
    assert cloud[MASKED_MEDIAN]["psnr"] > 60
    assert cloud[MASKED_MEDIAN]["psnr"] > cloud[NAIVE_FILL]["psnr"]
