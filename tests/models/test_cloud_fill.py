"""Cloud fill: the local (push-pull) fill of masked pixels, and a local-fill DB-CR's bridge start and condition."""

import numpy as np
import pytest
import torch

from models.card import S2_L1C_BANDS
from models.cloud_fill import SHADOW_REACH, SceneFill, fill_clouds, filled_start, local_fill, scene_fill, shadow_like


def _two_fields(size: int = 64) -> torch.Tensor:
    """(1, 2, size, size): a dark left half and a bright right half, in two bands."""
    image = torch.full((1, 2, size, size), 0.1)
    image[..., size // 2 :] = 0.5
    image[:, 1] *= 2
    return image


def test_unmasked_pixels_are_kept_bit_for_bit():
    image = torch.rand(2, 3, 40, 56)
    mask = (torch.rand(2, 1, 40, 56) > 0.7).float()
    filled = local_fill(image, mask)
    assert torch.equal(filled[mask.expand_as(image) == 0], image[mask.expand_as(image) == 0])


def test_a_small_cloud_takes_the_field_around_it_not_the_image_median():
    image = _two_fields()
    cloudy = image.clone()
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 40:48, 44:52] = 1  # inside the bright field
    cloudy[mask.expand_as(cloudy) > 0] = 0.9
    filled = local_fill(cloudy, mask)
    assert torch.allclose(filled, image, atol=1e-5)


def test_a_cloud_on_a_field_edge_takes_both_sides():
    image = _two_fields()
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 24:40, 24:40] = 1  # across the edge at column 32
    filled = local_fill(image * (1 - mask) + mask, mask)
    left, right = filled[0, 0, 32, 25], filled[0, 0, 32, 38]
    assert 0.1 <= left < right <= 0.5
    assert (filled[:, :, 24:40, 24:40] <= 1.0).all()


def test_an_image_without_clear_pixels_comes_back_unchanged():
    image = torch.rand(1, 3, 16, 16)
    assert torch.equal(local_fill(image, torch.ones(1, 1, 16, 16)), image)


def test_the_fill_is_per_image_of_a_batch():
    images = torch.stack([torch.full((2, 32, 32), 0.2), torch.full((2, 32, 32), 0.6)])
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    filled = local_fill(images + mask, mask)
    assert torch.allclose(filled, images, atol=1e-6)


def test_the_start_is_the_fill_and_the_condition_stacks_radar_cloudy_and_mask():
    optical, sar = torch.rand(2, 13, 32, 32), torch.rand(2, 2, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., :8, :8] = 1
    start, condition = filled_start(optical, sar, mask)
    assert torch.equal(start, local_fill(optical, mask))
    assert condition.shape == (2, 16, 32, 32)
    assert torch.equal(condition[:, :2], sar) and torch.equal(condition[:, 2:15], optical)
    assert torch.equal(condition[:, 15:], mask)


def test_a_tile_without_clear_ground_takes_the_background():
    image, mask = torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32)
    background = torch.rand(1, 3, 32, 32)
    assert torch.allclose(local_fill(image, mask, background=background), background, atol=1e-5)


def test_a_background_leaves_a_tiles_own_clear_ground_in_charge_where_it_has_some():
    image = _two_fields(32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 2:6, 20:24] = 1  # a small cloud in the bright field
    filled = local_fill(image * (1 - mask) + mask, mask, background=torch.zeros(1, 2, 32, 32))
    assert torch.allclose(filled, image, atol=1e-4)


def test_scene_fill_tiles_resample_the_coarse_fill_onto_the_scene_grid():
    rows, cols = np.mgrid[:4, :4].astype(np.float32)
    coarse = np.stack([10 * rows + cols, 10 * rows + cols + 100])  # linear, so bilinear sampling is exact inside
    fill = SceneFill(coarse, (8.0, 8.0))  # a 32 x 32 scene read 8 times smaller
    tiles = fill.tiles([(0, 0), (8, 12)], (16, 16))
    assert tiles.shape == (2, 2, 16, 16)
    # Scene pixel (r, c) sits at coarse ((r + 0.5) / 8 - 0.5, (c + 0.5) / 8 - 0.5).
    row, col = 8 + 4, 12 + 4
    expected = 10 * ((row + 0.5) / 8 - 0.5) + (col + 0.5) / 8 - 0.5
    assert float(tiles[1, 0, 4, 4]) == pytest.approx(expected, abs=1e-4)
    assert float(tiles[1, 1, 4, 4]) == pytest.approx(expected + 100, abs=1e-4)


def test_scene_fill_fills_the_coarse_clouds():
    coarse = np.full((2, 8, 8), 0.2, np.float32)
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    fill = scene_fill(np.where(mask, np.float32(0.9), coarse), mask, (4.0, 4.0))
    assert np.allclose(fill.coarse, 0.2, atol=1e-6) and fill.factor == (4.0, 4.0)


def _cloud_beside_its_shadow(height: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 13, height, 96) ground at 0.3 with a cloud (mask) at rows 40-56 and its dark shadow just below it."""
    image = torch.full((1, 13, height, 96), 0.3)
    mask = torch.zeros(1, 1, height, 96)
    mask[..., 40:56, 40:56] = 1
    image[..., 56:72, 40:56] = 0.05  # the shadow, darker than 0.6 x the clear median in every band
    return image, mask


def test_a_shadow_beside_its_cloud_is_kept_but_not_filled_from():
    image, mask = _cloud_beside_its_shadow()
    shadows = shadow_like(image, mask, S2_L1C_BANDS)
    assert shadows is not None
    assert bool((shadows[..., 56:72, 40:56] == 1).all()) and int(shadows.sum()) == 16 * 16
    filled = fill_clouds(image, mask, S2_L1C_BANDS)
    assert torch.allclose(filled[..., 40:56, 40:56], torch.tensor(0.3), atol=1e-5)  # the ground's, not the shadow's
    assert torch.equal(filled[mask.expand_as(image) == 0], image[mask.expand_as(image) == 0])
    assert local_fill(image, mask)[..., 40:56, 40:56].min() < 0.25  # the plain fill takes the shadow in


def test_dark_ground_away_from_clouds_and_rgb_images_single_nothing_out():
    image, mask = _cloud_beside_its_shadow(height=160)
    image[..., 56:72, 40:56] = 0.3
    image[..., 56 + SHADOW_REACH :, :] = 0.05  # a dark field just out of the clouds' reach
    shadows = shadow_like(image, mask, S2_L1C_BANDS)
    assert shadows is not None and int(shadows.sum()) == 0
    image[..., 56 + SHADOW_REACH - 1, 40] = 0.05  # one dark pixel within reach is singled out
    assert int(shadow_like(image, mask, S2_L1C_BANDS).sum()) == 1
    assert shadow_like(image[:, :3], mask, ("B4", "B3", "B2")) is None
    torch.testing.assert_close(fill_clouds(image[:, :3], mask, ("B4", "B3", "B2")), local_fill(image[:, :3], mask))
