from pathlib import Path

import numpy as np
import rasterio
import torch

from models.card import S2_L1C_BANDS
from models.cloud_fill import tile_cloud_mask
from models.keep_clear import feather, fill_clouds_only, match_clear_pixels

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "ROIs1868_summer_s2_cloudy_19_p30.tif"


def _sample_tile(rows=(0, 128), cols=(0, 128)):
    with rasterio.open(SAMPLE) as dataset:
        return torch.from_numpy(dataset.read(window=(rows, cols)).astype(np.float32) / 10000)[None]


def test_feather_keeps_clouds_and_fades_outwards():
    mask = torch.zeros(1, 1, 40, 40)
    mask[..., 15:25, 15:25] = 1
    weight = feather(mask)
    assert torch.all(weight[mask > 0] == 1)
    assert 0 < weight[0, 0, 20, 13] < 1  # just outside the cloud: partly the model
    assert weight[0, 0, 20, 2] < 1e-3  # far away: the input


def test_clear_pixels_keep_their_values_and_clouds_take_the_model():
    optical = _sample_tile()
    mask = tile_cloud_mask(optical, S2_L1C_BANDS, 0.4)
    out = fill_clouds_only(
        lambda o, s, origins, mask=None: torch.full_like(o, 0.05), optical, torch.zeros(1, 2, 128, 128), [(0, 0)], mask
    )
    weight = feather(mask)
    clear = weight == 0
    assert clear.any() and (mask > 0).any()
    assert torch.equal(out[clear.expand_as(out)], optical[clear.expand_as(out)])
    # under the clouds: the model's constant, shifted per band to match the tile's clear pixels
    for band in range(13):
        expected = optical[0, band][clear[0, 0]].mean()
        assert torch.allclose(out[0, band][mask[0, 0] > 0], expected, atol=1e-5)
    assert 0.05 < float(mask.mean()) < 0.95 and mask.shape == (1, 1, 128, 128)


def test_a_clear_tile_skips_the_network():
    calls = []

    def restore(optical, sar, origins, mask=None):
        calls.append(1)
        return optical

    # a cloud-free patch of vegetation in the sample
    clear = _sample_tile(rows=(64, 96), cols=(192, 224))
    assert not tile_cloud_mask(clear, S2_L1C_BANDS, 0.4).any()
    out = fill_clouds_only(restore, clear, None, [(0, 0)], tile_cloud_mask(clear, S2_L1C_BANDS, 0.4))
    assert calls == [] and torch.equal(out, clear)


def test_rgb_uses_the_learnt_detector_s_mask():
    from models.cloudmask import image_clouds
    from models.datasets.rasters import read_reflectance

    rgb = read_reflectance(SAMPLE.parent / "rice2_249_cloudy.png")
    mask = tile_cloud_mask(torch.from_numpy(rgb)[None], ("R", "G", "B"), 0.4)
    assert torch.equal(mask[0, 0] > 0, torch.from_numpy(image_clouds(rgb, ("R", "G", "B"), 0.4)[1]))
    optical = torch.from_numpy(rgb)[None]
    out = fill_clouds_only(lambda o, s, origins, mask=None: torch.zeros_like(o), optical, None, [(0, 0)], mask)
    kept = feather(mask)[0, 0] == 0
    assert 0.05 < float(mask.mean()) < 1 and kept.any()
    assert torch.equal(out[0][:, kept], optical[0][:, kept])
    assert not torch.equal(out[0][:, mask[0, 0] > 0], optical[0][:, mask[0, 0] > 0])


def test_output_is_matched_to_the_clear_pixels():
    optical = torch.full((1, 2, 16, 16), 0.3)
    restored = torch.full((1, 2, 16, 16), 0.1)
    restored[..., :4, :] = 0.5  # the part under the cloud
    clear = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    clear[..., 8:, :] = True
    matched = match_clear_pixels(restored, optical, clear)
    assert torch.allclose(matched[..., 8:, :], torch.tensor(0.3))  # now equal to the input where clear
    assert torch.allclose(matched[..., :4, :], torch.tensor(0.7))  # the same shift under the cloud
    too_few = match_clear_pixels(restored, optical, torch.zeros_like(clear))
    assert torch.equal(too_few, restored)
