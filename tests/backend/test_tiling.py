import itertools

import numpy as np
import pytest

from backend.tiling import (
    WEIGHT_FLOOR,
    Tile,
    blend_weight,
    count_tiles,
    pad_to_tile,
    taper,
    tile_batches,
    tile_grid,
    tile_rows,
    tile_starts,
)


@pytest.mark.parametrize(
    ("length", "size", "overlap", "expected"),
    [
        (256, 256, 64, [0]),
        (100, 256, 64, [0]),
        (448, 256, 64, [0, 192]),
        (500, 256, 64, [0, 192, 244]),
        (512, 256, 0, [0, 256]),
        (513, 256, 0, [0, 256, 257]),
    ],
)
def test_tile_starts(length, size, overlap, expected):
    assert tile_starts(length, size, overlap) == expected


@pytest.mark.parametrize("length", [33, 64, 97, 200, 1000])
def test_tiles_cover_every_pixel_and_stay_inside(length):
    size, overlap = 32, 8
    starts = tile_starts(length, size, overlap)
    covered = np.zeros(length, dtype=int)
    for start in starts:
        assert 0 <= start and start + size <= length
        covered[start : start + size] += 1
    assert covered.min() >= 1
    # neighbours overlap by at least the requested overlap
    assert all(b - a <= size - overlap for a, b in itertools.pairwise(starts))


def test_bad_tiling_is_refused():
    with pytest.raises(ValueError):
        tile_starts(100, 32, 32)


def test_grid_groups_rows_and_counts():
    rows = tile_grid(70, 90, 32, 8)
    assert [row[0].row for row in rows] == tile_starts(70, 32, 8)
    assert all(len(row) == len(tile_starts(90, 32, 8)) for row in rows)
    assert sum(len(row) for row in rows) == count_tiles(70, 90, 32, 8)
    tile = rows[-1][-1]
    assert tile.row + tile.height == 70 and tile.col + tile.width == 90
    assert tile.origin == (tile.row, tile.col)


def test_small_raster_gives_one_padded_tile():
    (row,) = tile_grid(20, 300, 32, 8)
    assert row[0].height == 20 and row[0].width == 32 and row[0].padded
    assert not Tile(0, 0, 32, 32, 32).padded


def test_taper_shape():
    flat = taper(32, 8, False, False)
    assert np.all(flat == 1.0)
    both = taper(32, 8, True, True)
    assert both[0] < 0.05 and both[-1] < 0.05 and np.all(both[8:24] == 1.0)
    assert np.all(np.diff(both[:8]) > 0)
    np.testing.assert_allclose(both[:8], both[::-1][:8])
    assert both.min() >= WEIGHT_FLOOR and both.dtype == np.float32


def test_complementary_ramps_sum_to_one():
    # Two tiles overlapping by exactly the ramp: weights add up to 1 across the overlap (a smooth hand-over).
    ramp_up = taper(32, 8, True, False)[:8]
    ramp_down = taper(32, 8, False, True)[-8:]
    np.testing.assert_allclose(ramp_up + ramp_down, 1.0, atol=1e-6)


def test_blend_weight_has_no_taper_on_raster_edges():
    first = Tile(0, 0, 32, 32, 32)
    weight = blend_weight(first, 100, 100, 8)
    assert weight.shape == (32, 32)
    assert weight[0, 0] == 1.0  # top-left corner touches the raster edge on both sides
    assert weight[-1, -1] < 0.05  # bottom-right meets other tiles
    alone = blend_weight(Tile(0, 0, 20, 32, 32), 20, 32, 8)
    assert np.all(alone == 1.0)


def test_pad_to_tile_reflects():
    array = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    padded = pad_to_tile(array, 5)
    assert padded.shape == (1, 5, 5)
    np.testing.assert_array_equal(padded[0, :2, :3], array[0])
    assert padded[0, 0, 3] == array[0, 0, 1]  # reflection, not zeros
    single = pad_to_tile(np.ones((2, 1, 4), dtype=np.float32), 4)
    assert single.shape == (2, 4, 4) and np.all(single == 1.0)
    same = np.zeros((1, 4, 4))
    assert pad_to_tile(same, 4) is same


@pytest.mark.parametrize("batch", [1, 3, 4, 7, 100])
def test_tile_batches_follow_the_grid_lazily_with_the_next_row(batch):
    grid = tile_grid(70, 90, 32, 8)
    flat = [tile for row in grid for tile in row]
    batches = tile_batches(70, 90, 32, 8, batch)
    assert not isinstance(batches, list)  # a generator: nothing is listed up front
    seen = list(batches)
    assert [tile for tiles, _ in seen for tile in tiles] == flat
    assert all(len({tile.row for tile in tiles}) == 1 for tiles, _ in seen)  # never two rows of tiles
    per_row = len(grid[0])
    assert [len(tiles) for tiles, _ in seen] == [
        min(batch, per_row - start) for start in range(0, per_row, batch)
    ] * len(grid)
    done = 0
    for tiles, next_row in seen:
        done += len(tiles)
        assert next_row == (flat[done].row if done < len(flat) else 70)


def test_tile_rows_makes_one_row_at_a_time():
    rows = tile_rows(10_000, 10_000, 256, 64)
    first = next(rows)
    assert len(first) == len(tile_starts(10_000, 256, 64)) and first[0].origin == (0, 0)
    assert next(rows)[0].row == 192
