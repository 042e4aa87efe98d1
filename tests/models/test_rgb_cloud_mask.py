"""The shipped RGB cloud detector on the bundled RICE2 pair (a held-out pair: the detector never trained on it)."""

from pathlib import Path

import numpy as np
import pytest

from models.cloudmask import cloud_fraction, image_clouds
from models.datasets.rasters import read_reflectance
from models.rgb_cloud_mask import rgb_cloud_probability

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
RGB = ("R", "G", "B")


def test_the_detector_finds_the_sample_s_clouds_and_leaves_its_clear_date_alone():
    _, cloudy = image_clouds(read_reflectance(SAMPLE / "rice2_249_cloudy.png"), RGB)
    _, clear = image_clouds(read_reflectance(SAMPLE / "rice2_249_clear.png"), RGB)
    assert cloud_fraction(cloudy) > 0.5  # cumulus over most of the scene
    assert cloud_fraction(clear) < 0.05


def test_the_mask_is_the_probability_above_the_threshold():
    rgb = read_reflectance(SAMPLE / "rice2_249_cloudy.png")
    probability, mask = image_clouds(rgb, RGB, threshold=0.7)
    assert probability.shape == rgb.shape[1:] and probability.dtype == np.float32
    assert np.array_equal(mask, probability > 0.7)
    assert np.allclose(rgb_cloud_probability(rgb[None])[0], probability)


def test_other_band_counts_are_a_sentence():
    with pytest.raises(ValueError, match="needs 3 bands"):
        rgb_cloud_probability(np.zeros((4, 8, 8), np.float32))
