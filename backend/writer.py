"""Write the blended result as a tiled, compressed GeoTIFF, one stripe of rows at a time.

Tiles arrive row of tiles by row of tiles, top to bottom. :class:`StripeWriter` keeps float32 sums of weighted
values and of weights only for the rows that a later tile may still touch (about one tile high, the full raster
width), encodes every row that no later tile can touch into the output's dtype, and writes those once they make a
whole row of output blocks. With blocks as tall as the tiles' step (:func:`block_for_step`), each row of tiles
finishes one row of blocks, written at once. Peak memory therefore depends on the raster's width, the tile and the
block size, never on its height. Rows are written in whole output blocks, so each compressed GeoTIFF block is
written exactly once (rewriting one relocates it and bloats the file). The writes themselves (GDAL's compression
and the file's I/O) run on a thread of their own, one row of blocks at a time, beside the network's next batch.

:func:`open_output` writes to ``protocol.partial_path(output)`` and renames it to ``output`` only when the block
exits normally, so a failed or cancelled run never leaves a half file under the output name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from backend.errors import OutputError
from backend.protocol import partial_path
from backend.raster_io import Grid, georeferenced
from backend.tiling import Tile
from models.card import RGB_BANDS

# 256 px blocks (GDAL's default for tiled GeoTIFFs): the writer holds one row of them across the raster's width
# in the output's dtype until the row is whole, so a smaller block keeps less of a wide raster in memory.
MAX_BLOCK = 256
# GeoTIFF tile sides must be multiples of 16.
BLOCK_MULTIPLE = 16

# Turns blended reflectance (C, h, W) and a validity mask (h, W) into the output's bands and data type.
Encoder = Callable[[np.ndarray, np.ndarray], np.ndarray]


def block_size(length: int, preferred: int = MAX_BLOCK) -> int:
    """Output block side for a raster side of ``length`` pixels: ``preferred``, or less for small rasters."""
    return min(preferred, max(BLOCK_MULTIPLE, -(-length // BLOCK_MULTIPLE) * BLOCK_MULTIPLE))


def block_for_step(step: int) -> int:
    """The output block side for tiles that step by ``step`` pixels.

    The step itself where it can be a GeoTIFF block side (a multiple of 16, at most 512): each row of tiles then
    finishes exactly one row of blocks, which :class:`StripeWriter` writes at once instead of holding finished rows
    until a row of blocks is whole. Otherwise :data:`MAX_BLOCK`.
    """
    return step if step % BLOCK_MULTIPLE == 0 and BLOCK_MULTIPLE <= step <= 2 * MAX_BLOCK else MAX_BLOCK


def output_profile(
    grid: Grid, count: int, dtype: np.dtype, nodata: float | None, block: int = MAX_BLOCK
) -> dict[str, Any]:
    """GeoTIFF creation options: the grid, tiled (``block`` px), DEFLATE with a predictor, BigTIFF where needed.

    An input without georeferencing (a plain PNG or JPEG) gives an output without CRS or geotransform, not an
    identity transform: GIS software (QGIS, GDAL) then shows both the same way, image rows top-down.
    """
    floating = np.issubdtype(dtype, np.floating)
    located = georeferenced(grid)
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": np.dtype(dtype).name,
        "crs": grid.crs,
        "transform": grid.transform if located else None,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": block_size(grid.width, block),
        "blockysize": block_size(grid.height, block),
        "compress": "DEFLATE",
        # Level 1, not GDAL's 6: on a 13-band 4096 x 512 uint16 stripe it wrote in 0.85 s instead of 1.9 s for a
        # file 1.7 % larger (writing was 6 % of a run's time at level 6).
        "zlevel": 1,
        # Horizontal differencing (2) suits integers, floating-point prediction (3) suits floats.
        "predictor": 3 if floating else 2,
        "interleave": "pixel",
        # IF_NEEDED does not anticipate compression, so outputs near 4 GB could fail; IF_SAFER does.
        "BIGTIFF": "IF_SAFER",
    }


@contextlib.contextmanager
def open_output(
    output: str,
    grid: Grid,
    band_names: Sequence[str],
    dtype: np.dtype,
    nodata: float | None,
    tags: dict[str, str] | None = None,
    block: int = MAX_BLOCK,
) -> Iterator[DatasetWriter]:
    """Open the partial output file; rename it to ``output`` on success, delete it on any error or cancel.

    ``block`` is the side of its blocks (less for a raster smaller than that; see :func:`block_for_step`).

    Raises:
        OutputError: the file cannot be created or finished (folder, permissions, disk space).
    """
    partial = partial_path(output)
    profile = output_profile(grid, len(band_names), dtype, nodata, block)
    with contextlib.suppress(FileNotFoundError):
        os.remove(partial)  # left by a killed run
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # an ungeoreferenced input: expected
            dataset = rasterio.open(partial, "w", **profile)
    except (RasterioError, OSError) as error:
        raise output_error(output, error) from error
    try:
        for index, name in enumerate(band_names, start=1):
            dataset.set_band_description(index, name)
        if tuple(band_names[:3]) == RGB_BANDS:
            # Red, green, blue first (RGB or RGB + NIR): GIS software shows it in true colour.
            rest = [ColorInterp.undefined] * (len(band_names) - 3)
            dataset.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, *rest]
        if tags:
            dataset.update_tags(**tags)
        yield dataset
        stop_background_writes(dataset, raise_errors=True)
        dataset.close()
        os.replace(partial, output)
    except BaseException as error:
        # Measured before the partial file goes: removing it frees the space that ran out.
        failure = output_error(output, error) if isinstance(error, (RasterioError, OSError)) else None
        stop_background_writes(dataset)
        with contextlib.suppress(RasterioError, OSError):
            dataset.close()  # flushing a full disk fails again; the file goes all the same
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        if failure is not None:
            raise failure from error
        raise


# Below this much free space a failed write is taken for a full disk whatever its message: GDAL often reports
# only "TIFFAppendToStrip: Write error" or rasterio's "See previous exception", and the errno is lost on the way.
NEARLY_FULL_BYTES = 16 * 1024 * 1024
_FULL_DISK_TEXT = ("no space left on device", "free disk space available")


def output_error(output: str, error: BaseException) -> OutputError:
    """The sentence for a failure writing ``output``: a full disk says so and where, anything else GDAL's words."""
    folder = os.path.dirname(os.path.abspath(output))
    if is_disk_full(error, folder):
        return OutputError(f"No space left on {folder}; free some space or choose another output folder")
    return OutputError(f"Cannot write {output}: {error}")


def is_disk_full(error: BaseException, folder: str) -> bool:
    """Whether ``error`` (or one it came from) is ENOSPC or GDAL's report of it, or ``folder``'s disk is nearly full."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if any(words in str(seen).lower() for words in _FULL_DISK_TEXT):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:  # the folder is missing: not a full disk
        return False


# One write of a row of blocks: the values (bands, h, w), their window, and the per-dataset mask (h, w) or None.
BlockWrite = tuple[np.ndarray, Window, np.ndarray | None]


class BackgroundWrites:
    """A dataset's writes on a thread of their own, one job (a row of blocks) in flight at a time.

    Only that thread writes to the dataset while the run goes on. A write's error (a full disk) is raised in the
    caller's thread by the next :meth:`submit` or by :meth:`wait`. Closing a dataset while a write is in flight
    would crash GDAL, so :func:`open_output` closes the dataset's writing threads (:func:`stop_background_writes`)
    before it closes the dataset, however its block ends.
    """

    def __init__(self, dataset: DatasetWriter) -> None:
        self.dataset = dataset
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
        self._job: Future[None] | None = None
        _WRITING.setdefault(id(dataset), []).append(self)

    def submit(self, writes: list[BlockWrite]) -> None:
        """Wait for the job in flight, then start writing ``writes`` (arrays the caller no longer changes)."""
        self.wait()
        self._job = self._thread.submit(self._write, writes)

    def wait(self) -> None:
        """Wait for the job in flight; raise its error, if any."""
        job, self._job = self._job, None
        if job is not None:
            job.result()

    def close(self) -> None:
        """Wait for the job in flight without raising (the run is ending anyway) and stop the thread."""
        with contextlib.suppress(Exception):
            self.wait()
        self._thread.shutdown(wait=True)

    def _write(self, writes: list[BlockWrite]) -> None:
        for values, window, mask in writes:
            self.dataset.write(values, window=window)
            if mask is not None:
                self.dataset.write_mask(mask, window=window)


# id(dataset) -> the writing threads of a dataset still open, for open_output to stop before it closes it.
_WRITING: dict[int, list[BackgroundWrites]] = {}


def stop_background_writes(dataset: DatasetWriter, raise_errors: bool = False) -> None:
    """Wait for and stop every writing thread of ``dataset`` (see :class:`BackgroundWrites`).

    With ``raise_errors`` a failed write in flight is raised (and the threads stay for a second call to stop).
    """
    if raise_errors:
        for writes in _WRITING.get(id(dataset), []):
            writes.wait()
    for writes in list(_WRITING.pop(id(dataset), [])):
        writes.close()


class StripeWriter:
    """Blends weighted tiles into a stripe of rows and streams finished rows to a dataset.

    Two buffers, both the raster's width: float32 sums of weighted values and of weights for the rows a later tile
    may still touch (``stripe_rows``), and the finished rows already encoded in the output's bands and dtype (a
    uint16 row costs half a float32 one and only the restored bands) until they fill a whole row of output blocks.
    Each row is divided and encoded once, when it is final, exactly as if the whole raster were done at once.

    Args:
        dataset: the open output (its height, width and block shape are used).
        channels: channels of the blended values (the model's bands).
        stripe_rows: the most rows one batch of tiles reaches below the first row not yet final (one tile height
            when batches stay within a row of tiles); sizes the float32 buffer, which grows if a batch reaches
            further.
        encode: turns blended values and validity into the output's bands and dtype.
        write_mask: also write a per-dataset mask (for inputs whose nodata is a mask, not a value).

    The writes go through :class:`BackgroundWrites`; :func:`open_output` waits for them before it closes the
    dataset, and :meth:`finish` waits for the last one.
    """

    def __init__(
        self, dataset: DatasetWriter, channels: int, stripe_rows: int, encode: Encoder, write_mask: bool = False
    ) -> None:
        self.dataset = dataset
        self.height, self.width = dataset.height, dataset.width
        self.block, self.block_width = dataset.block_shapes[0]
        self.encode = encode
        self.write_mask = write_mask
        self.top = 0  # first row not yet final; float buffer row 0 is this raster row
        self._used = 0  # float buffer rows touched so far
        rows = min(self.height, stripe_rows)
        self._sum = np.zeros((channels, rows, self.width), dtype=np.float32)
        self._weight = np.zeros((rows, self.width), dtype=np.float32)
        # Final rows waiting for a whole row of blocks, from raster row self.top - self._pending_rows on;
        # allocated at the first encode, which tells the output's bands and dtype.
        self._pending: np.ndarray | None = None
        self._pending_mask: np.ndarray | None = None
        self._pending_rows = 0
        self._writes = BackgroundWrites(dataset)

    @property
    def buffer_shape(self) -> tuple[int, int, int]:
        """(channels, rows, width) of the float32 accumulators (besides one row of blocks in the output's dtype)."""
        channels, rows, width = self._sum.shape
        return (channels, rows, width)

    def add(self, tile: Tile, values: np.ndarray, weight: np.ndarray) -> None:
        """Accumulate one tile.

        Args:
            tile: where the values lie.
            values: float32 (channels, tile.height, tile.width).
            weight: float32 (tile.height, tile.width); 0 where the tile must not count (nodata).
        """
        start = tile.row - self.top
        if start < 0:
            raise ValueError(f"tile at row {tile.row} arrived after row {self.top - 1} was written")
        stop = start + tile.height
        if stop > self._sum.shape[1]:
            self._grow(stop)
        cols = slice(tile.col, tile.col + tile.width)
        self._sum[:, start:stop, cols] += values * weight
        self._weight[start:stop, cols] += weight
        self._used = max(self._used, stop)

    def _grow(self, rows: int) -> None:
        # A safety net: the buffer is sized for the batch up front, so this should not happen.
        rows = min(rows, self.height - self.top)
        grown = np.zeros((self._sum.shape[0], rows, self.width), dtype=np.float32)
        grown[:, : self._used] = self._sum[:, : self._used]
        weight = np.zeros((rows, self.width), dtype=np.float32)
        weight[: self._used] = self._weight[: self._used]
        self._sum, self._weight = grown, weight

    def release(self, before_row: int) -> None:
        """Finish the rows above ``before_row`` (no later tile touches them); write them in whole blocks."""
        final = min(before_row, self.height) - self.top
        while final > 0:
            # Never more than the float buffer holds, nor past the end of the current row of blocks.
            rows = min(final, self._sum.shape[1], self.block - self._pending_rows)
            self._finish_rows(rows)
            final -= rows

    def finish(self) -> None:
        """Write all remaining rows and wait until they are written."""
        self.release(self.height)
        self._writes.wait()

    def _finish_rows(self, rows: int) -> None:
        """Encode the first ``rows`` rows of the float buffer and shift the buffer up.

        Rows that make a whole row of blocks by themselves (or end the raster) are written block by block at once;
        others wait in the pending rows until their row of blocks is whole.
        """
        whole = self._pending_rows == 0 and (rows == self.block or self.top + rows == self.height)
        # The pending rows' buffer may still be on its way to the file; and one row of blocks in memory at a time.
        self._writes.wait()
        writes: list[BlockWrite] = []
        for left in range(0, self.width, self.block_width):
            # One block column at a time: the division and the encoder's temporaries stay a block big.
            cols = slice(left, min(left + self.block_width, self.width))
            weight = self._weight[:rows, cols]
            valid = weight > 0
            encoded = self.encode(self._sum[:, :rows, cols] / np.where(valid, weight, 1.0), valid)
            if whole:
                window = Window(left, self.top, cols.stop - left, rows)
                writes.append((encoded, window, np.where(valid, 255, 0).astype(np.uint8) if self.write_mask else None))
                continue
            if self._pending is None:
                self._pending = np.empty((encoded.shape[0], self.block, self.width), dtype=encoded.dtype)
                if self.write_mask:
                    self._pending_mask = np.empty((self.block, self.width), dtype=np.uint8)
            self._pending[:, self._pending_rows : self._pending_rows + rows, cols] = encoded
            if self._pending_mask is not None:
                self._pending_mask[self._pending_rows : self._pending_rows + rows, cols] = np.where(valid, 255, 0)
        keep = max(self._used - rows, 0)
        for channel in self._sum:
            # Channel by channel: the rows moved up and their destination are then one contiguous run each,
            # which numpy copies in place; a (C, rows, W) slice would first be copied whole to a temporary.
            channel[:keep] = channel[rows : rows + keep]
            channel[keep:] = 0.0
        self._weight[:keep] = self._weight[rows : rows + keep]
        self._weight[keep:] = 0.0
        self._used = keep
        if whole:
            self._writes.submit(writes)
            self.top += rows
            return
        self.top += rows
        self._pending_rows += rows
        if self._pending_rows == self.block or self.top == self.height:
            self._write_pending()

    def _write_pending(self) -> None:
        assert self._pending is not None
        rows = self._pending_rows
        window = Window(0, self.top - rows, self.width, rows)
        mask = self._pending_mask[:rows] if self._pending_mask is not None else None
        self._writes.submit([(self._pending[:, :rows], window, mask)])  # the buffer waits for it before reuse
        self._pending_rows = 0
