import numpy as np

from models.baselines import cloudy_input, local_fill_baseline, naive_fill


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


def test_least_cloudy_takes_the_date_with_fewest_cloudy_pixels():
    from models.baselines import least_cloudy

    dates = np.stack([np.full((2, 3, 3), value, np.float32) for value in (0.1, 0.2, 0.3)])
    masks = np.zeros((3, 3, 3), bool)
    masks[0, :2] = True  # 6 cloudy pixels
    masks[1, 0, 0] = True  # 1
    masks[2, :, 0] = True  # 3
    assert np.array_equal(least_cloudy(dates, masks), dates[1])


def test_masked_median_uses_only_the_clear_dates_of_each_pixel():
    from models.baselines import masked_median

    dates = np.stack([np.full((1, 2, 2), value, np.float32) for value in (0.1, 0.2, 0.9)])
    masks = np.zeros((3, 2, 2), bool)
    masks[2, 0, 0] = True  # the bright date is cloudy at (0, 0): median of 0.1 and 0.2 there
    masks[:, 1, 1] = True  # cloudy on every date: median of all three
    median = masked_median(dates, masks)
    assert np.allclose(median[0], [[0.15, 0.2], [0.2, 0.2]])
    assert median.dtype == np.float32


def test_date_baselines_check_their_shapes():
    import pytest

    from models.baselines import masked_median

    with pytest.raises(ValueError, match="do not match"):
        masked_median(np.zeros((2, 1, 3, 3)), np.zeros((3, 3, 3), bool))


def test_the_local_fill_takes_the_neighbouring_field_and_keeps_clear_pixels():
    image = np.full((2, 32, 32), 0.1, np.float32)
    image[:, :, 16:] = 0.5
    mask = np.zeros((32, 32), bool)
    mask[4:10, 20:26] = True  # a cloud inside the bright field
    cloudy = np.where(mask, np.float32(0.9), image)
    filled = local_fill_baseline(cloudy, mask)
    assert np.array_equal(filled[:, ~mask], cloudy[:, ~mask])
    assert np.allclose(filled, image, atol=1e-5)
    assert np.allclose(naive_fill(cloudy, mask)[:, mask], 0.1)  # the median of the whole image: the dark field
