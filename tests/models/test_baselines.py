import numpy as np

from models.baselines import cloudy_input, naive_fill


def test_naive_fill_uses_the_band_median_of_clear_pixels():
    image = np.zeros((2, 4, 4), np.float32)
    image[0] = np.arange(16).reshape(4, 4) / 100
    image[1] = 0.5
    mask = np.zeros((4, 4), bool)
    mask[:2] = True  # top half cloudy; clear values of band 0 are 0.08..0.15
    filled = naive_fill(image, mask)
    assert np.allclose(filled[0, :2], np.median(np.arange(8, 16) / 100))
    assert np.array_equal(filled[:, 2:], image[:, 2:])
    assert np.allclose(filled[1], 0.5)
    assert filled.dtype == image.dtype


def test_naive_fill_without_clear_pixels_uses_the_whole_band_median():
    image = np.stack([np.full((3, 3), 0.2), np.arange(9.0).reshape(3, 3)])
    filled = naive_fill(image, np.ones((3, 3), bool))
    assert np.allclose(filled[0], 0.2)
    assert np.allclose(filled[1], 4.0)


def test_naive_fill_without_clouds_changes_nothing_and_inputs_stay_untouched():
    image = np.random.default_rng(0).random((3, 5, 5))
    before = image.copy()
    assert np.array_equal(naive_fill(image, np.zeros((5, 5), bool)), image)
    copy = cloudy_input(image)
    copy[:] = 0
    assert np.array_equal(image, before)
