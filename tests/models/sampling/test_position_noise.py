"""Starting noise fixed by absolute position: overlapping tiles agree, reruns repeat, seeds differ."""

import torch

from models.sampling.position_noise import CELL, batch_position_noise, position_noise


def test_overlapping_tiles_share_noise():
    a = position_noise(7, 0, 0, (3, 100, 100))
    b = position_noise(7, 40, 70, (3, 100, 100))
    torch.testing.assert_close(a[:, 40:, 70:], b[:, :60, :30], rtol=0, atol=0)


def test_any_tiling_gives_the_same_field():
    whole = position_noise(1, -10, 5, (2, 3 * CELL, 2 * CELL + 7))
    part = position_noise(1, -10 + 33, 5 + 90, (2, 50, 41))
    torch.testing.assert_close(whole[:, 33:83, 90:131], part, rtol=0, atol=0)


def test_reruns_repeat_and_seeds_differ():
    torch.testing.assert_close(position_noise(3, 5, 5, (1, 8, 8)), position_noise(3, 5, 5, (1, 8, 8)))
    assert not torch.equal(position_noise(3, 5, 5, (1, 8, 8)), position_noise(4, 5, 5, (1, 8, 8)))


def test_noise_is_standard_normal_and_cells_are_unrelated():
    field = position_noise(0, 0, 0, (4, 4 * CELL, 4 * CELL))
    assert abs(field.mean().item()) < 0.02 and abs(field.std().item() - 1) < 0.02
    left, right = field[:, :, :CELL].flatten(), field[:, :, CELL : 2 * CELL].flatten()
    assert abs(torch.corrcoef(torch.stack([left, right]))[0, 1].item()) < 0.05


def test_batch():
    out = batch_position_noise(2, [(0, 0), (16, 16)], (3, 32, 32))
    assert out.shape == (2, 3, 32, 32)
    torch.testing.assert_close(out[0, :, 16:, 16:], out[1, :, :16, :16], rtol=0, atol=0)
