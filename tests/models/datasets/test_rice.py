from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.datasets import RICE, split_by_place
from models.datasets.rasters import DatasetError

RICE2 = Path(__file__).resolve().parents[4] / "shared" / "data" / "rice2"


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((5, 7, 3), value, np.uint8)).save(path)


@pytest.mark.skipif(not RICE2.is_dir(), reason="shared RICE2 sample not present")
def test_real_rice2_sample_in_pix2pix_naming():
    dataset = RICE(RICE2)
    assert len(dataset) == 107
    item = dataset[0]
    assert item["cloudy"].shape == (3, 256, 256) and item["target"].shape == (3, 256, 256)
    assert 0.0 <= float(item["cloudy"].min()) and float(item["cloudy"].max()) <= 1.0
    assert item["name"] == dataset.places[0]
    splits = split_by_place(dataset.places)
    assert sorted(i for part in splits.values() for i in part) == list(range(107))


def test_cloud_and_label_folders(tmp_path):
    for name in ("10.png", "2.png"):
        _png(tmp_path / "cloud" / name, 255)
        _png(tmp_path / "label" / name, 51)
    dataset = RICE(tmp_path)
    assert dataset.places == ["2", "10"]
    item = dataset[0]
    assert float(item["cloudy"][0, 0, 0]) == 1.0
    assert float(item["target"][2, 4, 6]) == pytest.approx(0.2)


def test_missing_partner_is_a_sentence(tmp_path):
    _png(tmp_path / "3_real_A.png", 10)
    with pytest.raises(DatasetError, match=r"3_real_B\.png is missing"):
        RICE(tmp_path)
    with pytest.raises(DatasetError, match="is not a folder"):
        RICE(tmp_path / "nothing")
