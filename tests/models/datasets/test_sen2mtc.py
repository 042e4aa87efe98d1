from pathlib import Path

import numpy as np
import pytest
import rasterio

from models.datasets import Sen2MTC
from models.datasets.rasters import DatasetError


def _tif(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=6, height=6, count=4, dtype="uint16") as dst:
        dst.write(np.full((4, 6, 6), value, np.uint16))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for tile, ids in (("T30UVU", ("a1", "a2")), ("T31TCJ", ("b1",))):
        for name in ids:
            _tif(tmp_path / "Sen2_MTC" / tile / "cloudless" / f"{name}.tif", 500)
            for date in range(3):
                _tif(tmp_path / "Sen2_MTC" / tile / "cloud" / f"{name}_{date}.tif", 2000 + 1000 * date)
    (tmp_path / "train.txt").write_text("T30UVU\n")
    (tmp_path / "val.txt").write_text("\n")
    (tmp_path / "test.txt").write_text("T31TCJ\n")
    return tmp_path


def test_reads_tiles_of_a_split_with_three_dates(root, recwarn):
    train = Sen2MTC(root, "train")
    assert len(train) == 2 and train.places == ["T30UVU", "T30UVU"]
    item = train[0]
    assert item["cloudy"].shape == (4, 6, 6)
    assert item["cloudy_dates"].shape == (3, 4, 6, 6)
    assert float(item["cloudy_dates"][2, 0, 0, 0]) == pytest.approx(0.4)
    assert float(item["cloudy"][0, 0, 0]) == pytest.approx(0.2)
    assert float(item["target"][3, 5, 5]) == pytest.approx(0.05)
    assert item["name"] == "T30UVU/a1"
    assert len(Sen2MTC(root, "test")) == 1
    assert len(Sen2MTC(root, "val")) == 0


def test_missing_date_is_a_sentence(root):
    (root / "Sen2_MTC" / "T31TCJ" / "cloud" / "b1_2.tif").unlink()
    with pytest.raises(DatasetError, match=r"b1_2\.tif is missing"):
        Sen2MTC(root, "test")
