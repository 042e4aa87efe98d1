"""temporal_fill: the first date kept where clear, other dates matched and combined under its clouds."""

from __future__ import annotations

import pytest
import torch

from models.temporal_fill import COMBINES, MATCHINGS, fit_gain_offset, match_radiometry, temporal_fill


def _scene(seed: int = 0, size: int = 32) -> torch.Tensor:
    """(1, 2, size, size) smooth reflectance-like ground."""
    g = torch.Generator().manual_seed(seed)
    return 0.1 + 0.3 * torch.rand(1, 2, size, size, generator=g)


def _cloud(size: int, rows: slice, cols: slice) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size)
    mask[..., rows, cols] = 1.0
    return mask


def test_gain_and_offset_are_recovered_from_the_common_clear_pixels() -> None:
    ground = _scene()
    other = (ground - 0.02) / 1.3  # the other date: darker, less contrast
    common = torch.ones(1, 1, 32, 32, dtype=torch.bool)
    gain, offset = fit_gain_offset(other, ground, common)
    assert torch.allclose(gain, torch.full_like(gain, 1.3), atol=1e-4)
    assert torch.allclose(offset, torch.full_like(offset, 0.02), atol=1e-4)


def test_too_few_common_pixels_fall_back_to_an_offset_then_to_nothing() -> None:
    ground, other = _scene(), _scene(1)
    few = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    few[..., 0, :20] = True  # 20 pixels: enough for an offset, not for a gain
    gain, offset = fit_gain_offset(other, ground, few)
    assert torch.equal(gain, torch.ones_like(gain)) and offset.abs().sum() > 0
    none = torch.zeros_like(few)
    none[..., 0, :3] = True
    assert torch.equal(match_radiometry(other, ground, none, "gain_offset"), other)


def test_the_first_date_is_kept_bit_for_bit_where_clear_and_the_cloud_takes_the_matched_other_date() -> None:
    ground = _scene()
    cloud = _cloud(32, slice(8, 20), slice(8, 20))
    first = torch.where(cloud > 0, torch.full_like(ground, 0.9), ground)
    second = ground * 0.8 + 0.01  # same ground, other radiometry, clear everywhere
    dates = torch.stack([first, second], dim=1)
    clouds = torch.stack([cloud, torch.zeros_like(cloud)], dim=1)
    out = temporal_fill(dates, clouds)
    clear = (cloud <= 0).expand_as(first)
    assert torch.equal(out[clear], first[clear])
    assert torch.allclose(out[~clear], ground[~clear], atol=1e-4)


def test_a_missing_date_is_never_used_and_the_cloud_is_filled_locally() -> None:
    ground = torch.full((1, 2, 32, 32), 0.2)
    cloud = _cloud(32, slice(8, 20), slice(8, 20))
    first = torch.where(cloud > 0, torch.full_like(ground, 0.9), ground)
    wrong = torch.full_like(ground, 0.7)
    dates = torch.stack([first, wrong], dim=1)
    clouds = torch.zeros(1, 2, 1, 32, 32)
    clouds[:, 0] = cloud
    out = temporal_fill(dates, clouds, present=torch.tensor([[True, False]]))
    assert torch.allclose(out, ground, atol=1e-5)  # the local fill of flat ground, not the missing date's 0.7


def test_pixels_cloudy_on_every_date_take_the_local_fill_of_what_is_filled() -> None:
    ground = torch.full((1, 2, 32, 32), 0.3)
    cloud = _cloud(32, slice(4, 28), slice(4, 28))
    first = torch.where(cloud > 0, torch.full_like(ground, 0.9), ground)
    second = torch.where(cloud > 0, torch.full_like(ground, 0.8), ground)
    dates = torch.stack([first, second], dim=1)
    out = temporal_fill(dates, torch.stack([cloud, cloud], dim=1))
    assert torch.allclose(out, ground, atol=1e-5)


@pytest.mark.parametrize("combine", COMBINES)
def test_combines_pick_among_the_usable_dates(combine: str) -> None:
    size = 32
    cloud = _cloud(size, slice(8, 20), slice(8, 20))
    first = torch.where(cloud > 0, torch.ones(1, 2, size, size), torch.zeros(1, 2, size, size))
    second, third = torch.full((1, 2, size, size), 0.2), torch.full((1, 2, size, size), 0.4)
    dates = torch.stack([first, second, third], dim=1)
    clouds = torch.stack([cloud, torch.zeros_like(cloud), torch.zeros_like(cloud)], dim=1)
    out = temporal_fill(dates, clouds, combine=combine, matching="none")
    want = {"mean": 0.3, "median": 0.3, "nearest": 0.2}[combine]
    assert torch.allclose(out[..., 10, 10], torch.full((1, 2), want))


@pytest.mark.parametrize("matching", MATCHINGS)
def test_every_matching_keeps_a_date_that_already_matches(matching: str) -> None:
    ground = _scene()
    common = torch.ones(1, 1, 32, 32, dtype=torch.bool)
    assert torch.allclose(match_radiometry(ground, ground, common, matching), ground, atol=1e-5)


def test_unknown_options_are_refused() -> None:
    dates, clouds = torch.zeros(1, 2, 1, 4, 4), torch.zeros(1, 2, 1, 4, 4)
    with pytest.raises(ValueError, match="combine"):
        temporal_fill(dates, clouds, combine="max")
    with pytest.raises(ValueError, match="matching"):
        temporal_fill(dates, torch.ones_like(clouds), matching="histogram")
