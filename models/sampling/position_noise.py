"""Starting noise for the diffusion samplers, fixed by absolute pixel position and a seed.

The noise field over the whole output grid is cut into ``CELL`` × ``CELL`` cells; each cell's noise is drawn from
its own generator seeded by (seed, cell_row, cell_col). A tile gathers the cells it overlaps, so two overlapping
tiles see identical noise where they overlap (their predictions agree there and blending hides no seam), and a
rerun with the same seed reproduces the output bit for bit, whatever the tile size, overlap or batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

CELL = 64


def _cell_seed(seed: int, cell_row: int, cell_col: int) -> int:
    """A 63-bit generator seed for one cell; hashed so that neighbouring cells get unrelated streams."""
    digest = hashlib.blake2b(f"{seed}:{cell_row}:{cell_col}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _cell_noise(seed: int, cell_row: int, cell_col: int, channels: int) -> torch.Tensor:
    generator = torch.Generator(device="cpu").manual_seed(_cell_seed(seed, cell_row, cell_col))
    return torch.randn((channels, CELL, CELL), generator=generator, dtype=torch.float32)


def position_noise(seed: int, origin_row: int, origin_col: int, shape: Sequence[int]) -> torch.Tensor:
    """Standard normal noise for one tile, a pure function of (seed, absolute position, channels).

    Args:
        seed: the run's seed.
        origin_row: absolute row of the tile's top-left pixel on the output grid (may be negative for padding).
        origin_col: absolute column of the tile's top-left pixel.
        shape: (C, H, W) of the tile.

    Returns:
        (C, H, W) float32 noise on the CPU.
    """
    channels, height, width = (int(v) for v in shape)
    out = torch.empty((channels, height, width), dtype=torch.float32)
    first_row, last_row = origin_row // CELL, (origin_row + height - 1) // CELL
    first_col, last_col = origin_col // CELL, (origin_col + width - 1) // CELL
    for cell_row in range(first_row, last_row + 1):
        # Intersection of the tile with this cell row, in absolute and then in tile/cell coordinates.
        top = max(origin_row, cell_row * CELL)
        bottom = min(origin_row + height, (cell_row + 1) * CELL)
        for cell_col in range(first_col, last_col + 1):
            left = max(origin_col, cell_col * CELL)
            right = min(origin_col + width, (cell_col + 1) * CELL)
            cell = _cell_noise(seed, cell_row, cell_col, channels)
            out[:, top - origin_row : bottom - origin_row, left - origin_col : right - origin_col] = cell[
                :, top - cell_row * CELL : bottom - cell_row * CELL, left - cell_col * CELL : right - cell_col * CELL
            ]
    return out


def batch_position_noise(
    seed: int,
    origins: Sequence[tuple[int, int]],
    shape: Sequence[int],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Noise for a batch of tiles, one (row, col) origin each.

    Args:
        seed: the run's seed.
        origins: absolute (row, col) of each tile's top-left pixel.
        shape: (C, H, W) of every tile.
        device: where the result goes.

    Returns:
        (B, C, H, W) float32 noise.
    """
    tiles = [position_noise(seed, row, col, shape) for row, col in origins]
    return torch.stack(tiles).to(device)
