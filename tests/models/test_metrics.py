import math

import numpy as np
import pytest

from models.metrics import all_metrics, mae, psnr, rmse, sam, ssim


def _image(seed: int = 0, shape: tuple[int, int, int] = (4, 24, 24)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.1, 0.6, shape).astype(np.float32)


def test_identical_images_score_perfectly():
    image = _image()
    scores = all_metrics(image, image)
    assert scores["psnr"] == math.inf
    assert scores["ssim"] == pytest.approx(1.0)
    assert scores["mae"] == 0.0
    assert scores["sam"] == pytest.approx(0.0, abs=1e-4)


def test_constant_offset_gives_known_psnr_and_mae():
    target = _image()
    prediction = target + np.float32(0.1)
    assert rmse(prediction, target) == pytest.approx(0.1, rel=1e-5)
    assert psnr(prediction, target) == pytest.approx(20.0, rel=1e-5)  # 20·log10(1/0.1)
    assert mae(prediction, target) == pytest.approx(0.1, rel=1e-5)
    assert mae(target, prediction) == pytest.approx(0.1, rel=1e-5)


def test_psnr_is_one_number_over_all_bands_not_a_mean_of_band_psnrs():
    target = np.zeros((2, 16, 16))
    prediction = target.copy()
    prediction[0] += 0.1  # band 0 off by 0.1, band 1 exact: MSE = 0.005 over both bands
    assert psnr(prediction, target) == pytest.approx(-10 * math.log10(0.005))


def test_sam_of_scaled_spectra_is_zero_and_of_orthogonal_spectra_is_ninety():
    target = _image()
    assert sam(2.0 * target, target) == pytest.approx(0.0, abs=1e-4)
    a = np.zeros((2, 4, 4))
    b = np.zeros((2, 4, 4))
    a[0] = 1.0
    b[1] = 1.0
    assert sam(a, b) == pytest.approx(90.0)


def test_sam_skips_zero_pixels_and_is_nan_when_none_is_left():
    a = np.zeros((2, 4, 4))
    b = np.zeros((2, 4, 4))
    a[0, 0, 0] = 1.0
    b[:, 0, 0] = 1.0  # one pixel with 45°, all others zero in a
    assert sam(a, b) == pytest.approx(45.0)
    assert math.isnan(sam(np.zeros((2, 4, 4)), b))


def test_ssim_drops_for_noise_and_matches_skimage_per_band_mean():
    from skimage.metrics import structural_similarity

    target = _image(1)
    noisy = np.clip(target + np.random.default_rng(2).normal(0, 0.05, target.shape), 0, 1)
    value = ssim(noisy, target)
    assert 0.0 < value < 0.99
    per_band = [
        structural_similarity(
            target[c].astype(np.float64),
            noisy[c],
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
        for c in range(target.shape[0])
    ]
    assert value == pytest.approx(np.mean(per_band))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        mae(np.zeros((3, 8, 8)), np.zeros((3, 8, 9)))


def test_regions_score_the_cloudy_and_the_clear_pixels_apart():
    from models.metrics import region_metrics

    target = _image()
    prediction = target.copy()
    mask = np.zeros((24, 24), bool)
    mask[:, :6] = True  # a quarter of the image is cloudy; the error is only there
    prediction[:, mask] += np.float32(0.1)
    scores = region_metrics(prediction, target, mask)
    assert scores["cloud"]["psnr"] == pytest.approx(20.0, rel=1e-4)
    assert scores["cloud"]["mae"] == pytest.approx(0.1, rel=1e-4)
    assert scores["clear"]["psnr"] == math.inf and scores["clear"]["mae"] == 0.0
    # over all pixels the error is spread: RMSE = 0.1 * sqrt(1/4), so 6.02 dB above the cloud's 20 dB
    assert scores["all"]["psnr"] == pytest.approx(20.0 + 20 * math.log10(2), rel=1e-4)
    assert scores["all"] == pytest.approx(all_metrics(prediction, target))
    assert scores["clear"]["ssim"] > scores["cloud"]["ssim"]


def test_an_empty_region_is_nan_and_a_wrong_mask_is_refused():
    from models.metrics import region_metrics

    image = _image()
    scores = region_metrics(image, image, np.zeros((24, 24), bool))
    assert all(math.isnan(value) for value in scores["cloud"].values())
    with pytest.raises(ValueError, match="mask"):
        region_metrics(image, image, np.zeros((5, 5), bool))
