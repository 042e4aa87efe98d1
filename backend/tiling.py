"""Cut a raster into fixed-size overlapping tiles and weight them for seam-free blending.

Everything here is a pure function of sizes (pixels); nothing reads a file or knows which model runs.

Design (the practice of seam-free tiled inference, as in MONAI's sliding window and rasterio windows):

* Every tile is ``size`` x ``size`` pixels so the network always sees the shape it was trained on (and cuDNN, ONNX
  Runtime and ``torch.compile`` keep their fast paths). Tiles step by ``size - overlap``; the last row and column of
  tiles are shifted back inside the raster instead of overhanging it, so no tile is ever padded with made-up data
  unless the whole raster is smaller than one tile; only then is the tile reflect-padded.
* A tile's blend weight is separable: 1 in the centre, a raised-cosine ramp across the ``overlap`` pixels of each side
  that meets another tile, no ramp on sides that touch the raster edge (those pixels have no other tile to blend
  with), and never below :data:`WEIGHT_FLOOR` so a pixel covered only by ramps still has a defined value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

# Smallest blend weight: keeps sum(w) > 0 wherever a tile covers a pixel (MONAI clamps to the same value).
WEIGHT_FLOOR = 1e-3


@dataclass(frozen=True)
class Tile:
    """One network input placed on the raster grid.

    Attributes:
        row: top row of the tile on the raster (pixels, absolute).
        col: left column of the tile on the raster (pixels, absolute).
        height: rows of the tile that lie inside the raster (``size`` unless the raster is shorter).
        width: columns of the tile that lie inside the raster (``size`` unless the raster is narrower).
        size: the network's square tile side T (pixels); reads are padded from (height, width) to (T, T).
    """

    row: int
    col: int
    height: int
    width: int
    size: int

    @property
    def window(self) -> Window:
        """The part of the tile inside the raster, as a rasterio window."""
        return Window(self.col, self.row, self.width, self.height)

    @property
    def origin(self) -> tuple[int, int]:
        """Absolute (row, col) of the top-left pixel, as the restorer's ``origins`` expects."""
        return (self.row, self.col)

    @property
    def padded(self) -> bool:
        """Whether the read must be padded to reach ``size`` x ``size`` (only for rasters smaller than a tile)."""
        return self.height < self.size or self.width < self.size


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of tiles along one axis.

    Args:
        length: raster length along the axis (pixels, > 0).
        size: tile side (pixels).
        overlap: pixels shared by neighbouring tiles (0 <= overlap < size).

    Returns:
        Increasing offsets; the last one is ``length - size`` so the last tile ends at the raster edge
        (or ``[0]`` when the raster is not longer than one tile).
    """
    if length <= 0 or size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"bad tiling: length={length} size={size} overlap={overlap}")
    if length <= size:
        return [0]
    stride = size - overlap
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def tile_rows(height: int, width: int, size: int, overlap: int) -> Iterator[list[Tile]]:
    """The tiles of a ``height`` x ``width`` raster, one row of tiles at a time, top to bottom, left to right.

    Rows are made as they are asked for, so a run holds one row of tiles, whatever the raster's height.
    """
    tile_h, tile_w = min(size, height), min(size, width)
    cols = tile_starts(width, size, overlap)
    for row in tile_starts(height, size, overlap):
        yield [Tile(row, col, tile_h, tile_w, size) for col in cols]


def tile_grid(height: int, width: int, size: int, overlap: int) -> list[list[Tile]]:
    """All tiles of a ``height`` x ``width`` raster as a list of rows of tiles (see :func:`tile_rows`)."""
    return list(tile_rows(height, width, size, overlap))


def tile_batches(height: int, width: int, size: int, overlap: int, batch: int) -> Iterator[tuple[list[Tile], int]]:
    """Batches of up to ``batch`` tiles in :func:`tile_rows` order, each within one row of tiles, made lazily.

    A batch never spans two rows of tiles, so the writer holds one tile's height of rows, whatever the batch size
    (a row's last batch may be smaller).

    Yields:
        (tiles, next_row): the batch, and the first raster row a later batch can still touch (``height`` after the
        last batch): every row above it is final once the batch is blended.
    """
    if batch < 1:
        raise ValueError(f"bad batch: {batch}")
    batches = (
        row[start : start + batch]
        for row in tile_rows(height, width, size, overlap)
        for start in range(0, len(row), batch)
    )
    current = next(batches, None)
    while current is not None:
        following = next(batches, None)
        yield current, following[0].row if following else height
        current = following


def count_tiles(height: int, width: int, size: int, overlap: int) -> int:
    """Number of tiles :func:`tile_grid` makes, without building them."""
    return len(tile_starts(height, size, overlap)) * len(tile_starts(width, size, overlap))


def taper(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """One axis of the blend weight.

    Args:
        length: tile length along the axis (pixels).
        overlap: ramp length (pixels); 0 gives a flat weight.
        ramp_start: ramp up over the first ``overlap`` pixels (the side meets another tile).
        ramp_end: ramp down over the last ``overlap`` pixels.

    Returns:
        float32 array of shape (length,), values in [WEIGHT_FLOOR, 1].
    """
    weight = np.ones(length, dtype=np.float32)
    ramp_len = min(overlap, length // 2)
    if ramp_len > 0:
        # Raised cosine sampled at pixel centres: rises from ~0 to ~1 and mirrors the neighbour's ramp.
        ramp = 0.5 - 0.5 * np.cos(math.pi * (np.arange(ramp_len, dtype=np.float64) + 0.5) / ramp_len)
        if ramp_start:
            weight[:ramp_len] = ramp
        if ramp_end:
            weight[length - ramp_len :] = ramp[::-1]
    return np.maximum(weight, WEIGHT_FLOOR).astype(np.float32)


def blend_weight(tile: Tile, raster_height: int, raster_width: int, overlap: int) -> np.ndarray:
    """The tile's blend weight over its in-raster part, shape (tile.height, tile.width), float32."""
    rows = taper(tile.height, overlap, tile.row > 0, tile.row + tile.height < raster_height)
    cols = taper(tile.width, overlap, tile.col > 0, tile.col + tile.width < raster_width)
    return np.outer(rows, cols)


def pad_to_tile(array: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad the last two axes of ``array`` (..., h, w) at the bottom and right to (..., size, size).

    Used only when the raster is smaller than a tile; a 1-pixel axis is repeated (reflection needs two pixels).
    """
    height, width = array.shape[-2:]
    if height == size and width == size:
        return array
    pad = [(0, 0)] * (array.ndim - 2) + [(0, size - height), (0, size - width)]
    if min(height, width) > 1:
        return np.pad(array, pad, mode="reflect")
    return np.pad(array, pad, mode="edge")
