import socket
from pathlib import Path

import numpy as np
import pytest
import rasterio

from models.cloudmask import (
    cloud_fraction,
    cloud_mask,
    cloud_probability,
    default_bands,
    mask_from_probability,
)

SEN12 = Path(__file__).resolve().parents[3] / "shared" / "data" / "sen12ms-cr"
MAMBA = SEN12 / "mamba-scr" / "img" / "ROIs1868_summer_s2_cloudy_19_p30.tif"
GLF_CLEAR = SEN12 / "glf-cr" / "s2_cloudfree" / "ROIs2017_winter_112_p797.tif"
needs_data = pytest.mark.skipif(not MAMBA.is_file(), reason="shared SEN12MS-CR samples not present")


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as source:
        return source.read().astype(np.float32) / 10000


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("s2cloudless tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@needs_data
def test_real_cumulus_scene_is_about_a_third_cloudy_and_clear_scene_is_not(no_network):
    cumulus = cloud_fraction(cloud_mask(_read(MAMBA)))
    clear = cloud_fraction(cloud_mask(_read(GLF_CLEAR)))
    assert 0.25 < cumulus < 0.65  # scattered cumulus, ~30 % by eye, s2cloudless with dilation measures ~0.49
    assert clear < 0.02


@needs_data
def test_l2a_input_without_b10_still_finds_the_clouds():
    l1c = _read(MAMBA)
    l2a = np.delete(l1c, 10, axis=0)  # drop B10
    assert default_bands(12)[10] == "B11"
    full = cloud_mask(l1c)
    filled = cloud_mask(l2a)
    assert abs(cloud_fraction(filled) - cloud_fraction(full)) < 0.1


def test_probability_is_in_unit_range_and_shaped_like_the_image():
    image = np.random.default_rng(0).uniform(0.0, 0.3, (13, 12, 10)).astype(np.float32)
    probability = cloud_probability(image)
    assert probability.shape == (12, 10)
    assert probability.dtype == np.float32
    assert 0.0 <= probability.min() and probability.max() <= 1.0


def test_mask_parameters_threshold_average_and_dilate():
    probability = np.zeros((21, 21), np.float32)
    probability[10, 10] = 0.9
    assert mask_from_probability(probability, 0.4, 0, 0).sum() == 1
    assert mask_from_probability(probability, 0.95, 0, 0).sum() == 0
    assert mask_from_probability(probability, 0.4, 0, 2).sum() > 1
    # averaging over a disk spreads the single pixel below the threshold
    assert mask_from_probability(probability, 0.4, 4, 0).sum() == 0


def test_wrong_band_count_is_a_sentence():
    with pytest.raises(ValueError, match="13-band L1C or 12-band L2A"):
        cloud_probability(np.zeros((4, 8, 8), np.float32))
