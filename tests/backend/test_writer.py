import errno
import os
import re
import shutil
import threading
import time

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from backend.errors import OutputError
from backend.protocol import partial_path
from backend.raster_io import Grid
from backend.tiling import blend_weight, tile_grid
from backend.writer import StripeWriter, block_for_step, block_size, open_output, output_profile

GRID = Grid(CRS.from_epsg(32631), from_origin(500000.0, 5000000.0, 10.0, 10.0), 90, 70)


def identity_encode(values, valid):
    out = values.copy()
    out[:, ~valid] = -1.0
    return out.astype(np.float32)


@pytest.mark.parametrize(("length", "expected"), [(1, 16), (70, 80), (256, 256), (257, 256), (10980, 256)])
def test_block_size(length, expected):
    assert block_size(length) == expected
    assert expected % 16 == 0


def test_profile_is_tiled_compressed_bigtiff_safe():
    profile = output_profile(GRID, 13, np.dtype("uint16"), 0)
    assert profile["tiled"] and profile["compress"] == "DEFLATE" and profile["predictor"] == 2
    assert profile["BIGTIFF"] == "IF_SAFER"
    assert output_profile(GRID, 1, np.dtype("float32"), None)["predictor"] == 3


def write_blended(path, grid, values, tile, overlap, channels=2, batch_rows=1):
    with open_output(path, grid, [f"B{i + 1}" for i in range(channels)], np.dtype("float32"), -1.0) as dataset:
        writer = StripeWriter(dataset, channels, tile * batch_rows, identity_encode)
        rows = tile_grid(grid.height, grid.width, tile, overlap)
        for index, row in enumerate(rows):
            for item in row:
                window = np.s_[:, item.row : item.row + item.height, item.col : item.col + item.width]
                writer.add(item, values[window], blend_weight(item, grid.height, grid.width, overlap))
            writer.release(rows[index + 1][0].row if index + 1 < len(rows) else grid.height)
        writer.finish()
        return writer.buffer_shape


def test_streamed_output_matches_input_and_file_layout(tmp_path):
    values = np.random.default_rng(0).random((2, 70, 90), dtype=np.float32)
    path = str(tmp_path / "out.tif")
    write_blended(path, GRID, values, 32, 8)
    assert not os.path.exists(partial_path(path))
    with rasterio.open(path) as dataset:
        np.testing.assert_allclose(dataset.read(), values, rtol=1e-6)
        assert dataset.crs == GRID.crs and dataset.transform == GRID.transform
        assert dataset.descriptions == ("B1", "B2")
        assert dataset.nodata == -1.0
        assert dataset.block_shapes[0] == (80, 96)
        assert dataset.compression.name == "deflate"


def test_buffer_depends_on_width_not_height(tmp_path):
    shapes = {}
    for height in (600, 2000):
        grid = Grid(GRID.crs, GRID.transform, 40, height)
        values = np.ones((2, height, 40), dtype=np.float32)
        shapes[height] = write_blended(str(tmp_path / f"h{height}.tif"), grid, values, 32, 8)
    assert shapes[600] == shapes[2000] == (2, 32, 40)  # one tile high: finished rows wait encoded


def test_uncovered_pixels_are_nodata(tmp_path):
    path = str(tmp_path / "out.tif")
    with open_output(path, GRID, ["B1"], np.dtype("float32"), -1.0) as dataset:
        writer = StripeWriter(dataset, 1, 32, identity_encode)
        (first, *_), *_ = tile_grid(70, 90, 32, 8)
        writer.add(first, np.full((1, 32, 32), 5.0, np.float32), np.ones((32, 32), np.float32))
        writer.finish()
    with rasterio.open(path) as dataset:
        data = dataset.read(1)
    assert np.all(data[:32, :32] == 5.0) and np.all(data[32:, :] == -1.0)


def test_error_inside_removes_partial(tmp_path):
    path = str(tmp_path / "out.tif")
    with pytest.raises(RuntimeError), open_output(path, GRID, ["B1"], np.dtype("uint16"), None):
        assert os.path.exists(partial_path(path))
        raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []


def test_stale_partial_is_replaced(tmp_path):
    path = str(tmp_path / "out.tif")
    with open(partial_path(path), "w") as handle:
        handle.write("left by a killed run")
    with open_output(path, GRID, ["B1"], np.dtype("uint16"), None) as dataset:
        dataset.write(np.zeros((1, 70, 90), np.uint16))
    assert os.listdir(tmp_path) == ["out.tif"]


def test_missing_folder_is_an_output_error(tmp_path):
    with (
        pytest.raises(OutputError, match="Cannot write"),
        open_output(str(tmp_path / "nope" / "out.tif"), GRID, ["B1"], np.dtype("uint16"), None),
    ):
        pass


def test_tile_above_written_rows_is_refused(tmp_path):
    with open_output(str(tmp_path / "o.tif"), GRID, ["B1"], np.dtype("float32"), None) as dataset:
        writer = StripeWriter(dataset, 1, 32, identity_encode)
        writer.release(70)
        first = tile_grid(70, 90, 32, 8)[0][0]
        with pytest.raises(ValueError):
            writer.add(first, np.zeros((1, 32, 32), np.float32), np.ones((32, 32), np.float32))


class FullDisk:
    """An open output whose writes fail as GDAL's do when the disk fills up."""

    def __init__(self, dataset, error):
        self.dataset, self.error = dataset, error

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def write(self, *args, **kwargs):
        raise self.error


def gdal_write_error(message):
    """rasterio's error for a failed write, chained as rasterio chains it to GDAL's own message."""
    from rasterio._err import CPLE_AppDefinedError
    from rasterio.errors import RasterioIOError

    error = RasterioIOError("Read or write failed. See previous exception for details.")
    error.__cause__ = CPLE_AppDefinedError(1, 1, message)
    return error


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        gdal_write_error("/data/out.tif.partial: No space left on device"),
    ],
    ids=["enospc", "gdal-message"],
)
def test_full_disk_is_a_sentence_and_leaves_no_file(tmp_path, error):
    path = str(tmp_path / "out.tif")
    values = np.zeros((1, 70, 90), np.float32)
    with (
        pytest.raises(OutputError, match=re.escape(f"No space left on {tmp_path}; free some space")),
        open_output(path, GRID, ["B1"], np.dtype("float32"), None) as dataset,
    ):
        writer = StripeWriter(FullDisk(dataset, error), 1, 70, identity_encode)
        writer.add(tile_grid(70, 90, 96, 0)[0][0], values, np.ones((70, 90), np.float32))
        writer.finish()
    assert os.listdir(tmp_path) == []


def test_gdal_write_error_on_a_nearly_full_disk_is_a_full_disk(tmp_path, monkeypatch):
    path = str(tmp_path / "out.tif")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage._replace(free=4096))
    with (
        pytest.raises(OutputError, match="No space left on"),
        open_output(path, GRID, ["B1"], np.dtype("uint16"), None),
    ):
        raise gdal_write_error("TIFFAppendToStrip:Write error at scanline 0")
    assert os.listdir(tmp_path) == []


def test_other_write_errors_keep_gdal_words(tmp_path):
    path = str(tmp_path / "out.tif")
    with (
        pytest.raises(OutputError, match=r"Cannot write .*See previous exception"),
        open_output(path, GRID, ["B1"], np.dtype("uint16"), None),
    ):
        raise gdal_write_error("TIFFAppendToStrip:Write error at scanline 0")


class Recorder:
    """A stand-in output that records the windows written."""

    def __init__(self, height, width, block):
        self.height, self.width, self.block_shapes = height, width, [(block, block)]
        self.windows, self.mask_windows = [], []
        self.data = np.full((1, height, width), np.nan, np.float32)

    def write(self, values, window):
        self.windows.append(window)
        rows = slice(window.row_off, window.row_off + window.height)
        self.data[:, rows, window.col_off : window.col_off + window.width] = values

    def write_mask(self, mask, window):
        self.mask_windows.append(window)


def _write_tiles(out, values, size, overlap):
    height, width = values.shape[1:]
    writer = StripeWriter(out, 1, size, identity_encode, write_mask=True)
    rows = tile_grid(height, width, size, overlap)
    for index, row in enumerate(rows):
        for item in row:
            window = np.s_[:, item.row : item.row + item.height, item.col : item.col + item.width]
            writer.add(item, values[window], blend_weight(item, height, width, overlap))
        writer.release(rows[index + 1][0].row if index + 1 < len(rows) else height)
    writer.finish()
    return writer


def test_rows_are_written_once_in_whole_rows_of_blocks_and_match_the_input():
    values = np.random.default_rng(1).random((1, 150, 70), dtype=np.float32)
    out = Recorder(150, 70, 32)
    _write_tiles(out, values, 40, 16)  # rows final 24 at a time: they wait for whole rows of 32 px blocks
    held = [(0, 32, 70), (32, 32, 70), (64, 32, 70), (96, 32, 70)]
    last = [(128, 22, 32), (128, 22, 32), (128, 22, 6)]  # the last 22 rows end the raster together: block by block
    assert [(w.row_off, w.height, w.width) for w in out.windows] == held + last
    assert out.mask_windows == out.windows
    np.testing.assert_allclose(out.data, values, rtol=1e-6)


def test_blocks_as_tall_as_the_step_are_written_at_once_without_holding_rows():
    values = np.random.default_rng(2).random((1, 150, 70), dtype=np.float32)
    out = Recorder(150, 70, block_for_step(40 - 8))
    writer = _write_tiles(out, values, 40, 8)  # rows final 32 at a time, the last row of tiles shifted up
    at_once = [(row, col, 32, width) for row in (0, 32, 64) for col, width in ((0, 32), (32, 32), (64, 6))]
    held = [(96, 0, 32, 70)]  # the last row of tiles starts at row 110: rows 96-109 wait for the rest of the block
    last = [(128, 0, 22, 32), (128, 32, 22, 32), (128, 64, 22, 6)]
    assert [(w.row_off, w.col_off, w.height, w.width) for w in out.windows] == at_once + held + last
    assert out.mask_windows == out.windows
    np.testing.assert_allclose(out.data, values, rtol=1e-6)
    assert block_for_step(192) == 192 and block_for_step(200) == block_for_step(1024) == 256
    assert writer.buffer_shape == (1, 40, 70)


class SlowRecorder(Recorder):
    """A recorder whose writes take a while, noting the thread they ran on."""

    def __init__(self, *args):
        super().__init__(*args)
        self.threads = set()

    def write(self, values, window):
        time.sleep(0.05)
        self.threads.add(threading.get_ident())
        super().write(values, window)


def test_writes_run_on_their_own_thread_and_finish_waits_for_the_last():
    values = np.random.default_rng(3).random((1, 150, 70), dtype=np.float32)
    out = SlowRecorder(150, 70, block_for_step(40 - 8))
    _write_tiles(out, values, 40, 8)
    assert out.threads and threading.get_ident() not in out.threads
    np.testing.assert_allclose(out.data, values, rtol=1e-6)  # every row is in once finish() has returned


def test_a_failed_write_is_raised_by_the_next_release():
    class Failing(Recorder):
        def write(self, values, window):
            raise OSError(errno.EIO, "Input/output error")

    height, width = 96, 32
    writer = StripeWriter(Failing(height, width, 32), 1, 32, identity_encode)
    tiles = tile_grid(height, width, 32, 0)
    writer.add(tiles[0][0], np.ones((1, 32, 32), np.float32), np.ones((32, 32), np.float32))
    writer.release(32)  # the first row of blocks goes to the writing thread, which fails
    writer.add(tiles[1][0], np.ones((1, 32, 32), np.float32), np.ones((32, 32), np.float32))
    with pytest.raises(OSError, match="Input/output error"):
        writer.release(64)
