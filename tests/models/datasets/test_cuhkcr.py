from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.datasets import CUHKCR
from models.datasets.rasters import DatasetError


def _png(path: Path, rgb: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.broadcast_to(np.array(rgb, np.uint8), (4, 4, 3)).copy()).save(path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for split in ("train", "test"):
        for name in ("1.png", "2.png"):
            _png(tmp_path / split / "cloud" / name, (255, 255, 255))
            _png(tmp_path / split / "label" / name, (51, 102, 153))
            _png(tmp_path / split / "nir" / "cloud" / name, (204, 0, 0))
            _png(tmp_path / split / "nir" / "label" / name, (102, 0, 0))
    return tmp_path


def test_rgb_plus_nir_channel_zero(root):
    dataset = CUHKCR(root, "train")
    assert len(dataset) == 2 and dataset.places == ["1", "2"]
    item = dataset[1]
    assert item["cloudy"].shape == (4, 4, 4)
    assert [round(float(v), 3) for v in item["target"][:, 0, 0]] == [0.2, 0.4, 0.6, 0.4]
    assert float(item["cloudy"][3, 0, 0]) == pytest.approx(0.8)


def test_rgb_only_and_missing_nir(root):
    assert CUHKCR(root, "test", nir=False)[0]["cloudy"].shape == (3, 4, 4)
    (root / "test" / "nir" / "label" / "2.png").unlink()
    with pytest.raises(DatasetError, match="nir=False"):
        CUHKCR(root, "test")
