from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from models.datasets import RandomDihedral, Sen12MSCR, split_by_place
from models.datasets.rasters import DatasetError
from models.datasets.sen12mscr import find_patches, uncrtaints_split


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff",
        width=array.shape[2],
        height=array.shape[1],
        count=array.shape[0],
        dtype=array.dtype,
        crs="EPSG:32631",
        transform=Affine(10, 0, 500000, 0, -10, 5000000),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def _triplet(root: Path, season: str, scene: int, patch: int, size: int = 8, cloudy_dn: int = 3000) -> None:
    s1 = np.stack([np.full((size, size), -12.5, np.float32), np.full((size, size), -40.0, np.float32)])
    s1[0, 0, 0] = np.nan
    _write(root / f"{season}_s1" / f"s1_{scene}" / f"{season}_s1_{scene}_p{patch}.tif", s1)
    clear = np.full((13, size, size), 1000, np.uint16)
    clear[0, 0, 0] = 12000  # above 10000 DN: clipped to 1
    _write(root / f"{season}_s2" / f"s2_{scene}" / f"{season}_s2_{scene}_p{patch}.tif", clear)
    cloudy = np.full((13, size, size), cloudy_dn, np.uint16)
    _write(root / f"{season}_s2_cloudy" / f"s2_cloudy_{scene}" / f"{season}_s2_cloudy_{scene}_p{patch}.tif", cloudy)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _triplet(tmp_path, "ROIs1158_spring", 106, 407)  # a UnCRtainTS test scene
    _triplet(tmp_path, "ROIs1158_spring", 106, 12)
    _triplet(tmp_path, "ROIs1868_summer", 19, 30)  # a validation scene
    _triplet(tmp_path, "ROIs2017_winter", 112, 797)  # trains
    return tmp_path


def test_pairs_by_season_scene_and_patch_and_follows_uncrtaints_split(root):
    patches = find_patches(root)
    assert [p.name for p in patches] == [
        "ROIs1158_spring_106_p12",
        "ROIs1158_spring_106_p407",
        "ROIs1868_summer_19_p30",
        "ROIs2017_winter_112_p797",
    ]
    assert [uncrtaints_split(p) for p in patches] == ["test", "test", "val", "train"]
    assert patches[0].s2_cloudy.name == "ROIs1158_spring_s2_cloudy_106_p12.tif"
    assert len(Sen12MSCR(root, "test")) == 2
    assert len(Sen12MSCR(root, "val")) == 1
    assert len(Sen12MSCR(root, "train")) == 1
    assert len(Sen12MSCR(root, "all")) == 4


def test_items_are_scaled_as_in_the_dbcr_recipe(root):
    item = Sen12MSCR(root, "train")[0]
    assert item["cloudy"].shape == (13, 8, 8) and item["target"].shape == (13, 8, 8) and item["sar"].shape == (2, 8, 8)
    assert float(item["cloudy"][0, 1, 1]) == pytest.approx(0.3)
    assert float(item["target"][0, 0, 0]) == 1.0  # 12000 DN clipped
    assert float(item["sar"][0, 1, 1]) == pytest.approx(0.5)  # VV -12.5 dB on [-25, 0]
    assert float(item["sar"][1, 1, 1]) == 0.0  # VH -40 dB below -32.5
    assert float(item["sar"][0, 0, 0]) == 0.0  # NaN -> 0
    assert item["name"] == "ROIs2017_winter_112_p797"


def test_incomplete_triplets_are_skipped_with_a_warning(root):
    (root / "ROIs2017_winter_s2_cloudy" / "s2_cloudy_112" / "ROIs2017_winter_s2_cloudy_112_p797.tif").unlink()
    with pytest.warns(UserWarning, match="1 SEN12MS-CR patches"):
        assert len(find_patches(root)) == 3


def test_empty_root_is_a_sentence(tmp_path):
    with pytest.raises(DatasetError, match="no SEN12MS-CR patches"):
        Sen12MSCR(tmp_path)


def test_transform_and_place_split(root):
    dataset = Sen12MSCR(root, "all", transform=RandomDihedral())
    assert dataset[0]["cloudy"].shape == (13, 8, 8)
    splits = split_by_place(dataset.places, {"train": 0.5, "test": 0.5})
    for indices in splits.values():
        assert indices
    # both patches of scene 106 land together
    assert {0, 1} <= set(splits["train"]) or {0, 1} <= set(splits["test"])
