"""Cloud probabilities of the scene's blocks, classified once although overlapping tiles share them.

s2cloudless classifies ``PROBABILITY_STEP`` x ``PROBABILITY_STEP`` block means (models/cloudmask.py). Tiles overlap
(by 64 of 256 pixels, a quarter of each side), so classifying every tile whole would classify three blocks in
every five twice or four times. When a tile's origin lies on the scene's block grid its blocks are the scene's
blocks: each is classified once, by the first batch that reaches it, and kept until the run has passed its row.
Blocks that are not whole scene blocks (a tile off the grid, a partial block at the scene's edge, padding) are
classified for their tile alone, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.cloudmask import PROBABILITY_STEP, classify

# Stands for "not classified yet" in the kept rows (probabilities are 0-1).
UNKNOWN = -1.0
# A block claimed by a tile of the batch being classified holds CLAIMED - (its place in the classifier call).
CLAIMED = -2.0


@dataclass
class SceneBlocks:
    """Cloud probabilities of whole blocks of a ``height`` x ``width`` scene, kept by block row.

    Attributes:
        height: scene rows (pixels).
        width: scene columns (pixels).
        rows: block row -> probabilities of that row's whole blocks (UNKNOWN where not classified yet).
    """

    height: int
    width: int
    rows: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def whole_rows(self) -> int:
        """Block rows that lie wholly inside the scene."""
        return self.height // PROBABILITY_STEP

    @property
    def whole_cols(self) -> int:
        """Block columns that lie wholly inside the scene."""
        return self.width // PROBABILITY_STEP

    def probabilities(self, features: np.ndarray, origins: Sequence[tuple[int, int]]) -> np.ndarray:
        """Cloud probability of each tile's blocks, classifying in one call only the blocks not known yet.

        A scene block that several tiles of the batch share is classified once, from the first of them.

        Args:
            features: (N, h, w, 10) block features of N tiles (``models.cloudmask.block_features``).
            origins: each tile's (row, col) in the scene, in pixels.

        Returns:
            (N, h, w) float32 probabilities.
        """
        claimed = np.full(features.shape[:3], -1, dtype=np.int64)  # which new scene block a tile's block is
        new: list[np.ndarray] = []  # the features of each new scene block, in claim order
        places: list[tuple[np.ndarray, np.ndarray]] = []  # (kept row, its columns) of each claim
        result = np.full(features.shape[:3], UNKNOWN, dtype=np.float32)
        claims = 0
        for index, origin in enumerate(origins):
            for row, cols, kept in self._tile_rows(origin, features.shape[1:3]):
                values = kept[cols]
                fresh = values == UNKNOWN
                if fresh.any():
                    ids = claims + np.arange(int(fresh.sum()))
                    claims += len(ids)
                    kept[cols[fresh]] = CLAIMED - ids  # later tiles of this batch find the claim
                    new.append(features[index, row, : len(cols)][fresh])
                    places.append((kept, cols[fresh]))
                    values = kept[cols]
                pending = values <= CLAIMED
                claimed[index, row, : len(cols)][pending] = (CLAIMED - values[pending]).astype(np.int64)
                result[index, row, : len(cols)][~pending] = values[~pending]
        alone = (result == UNKNOWN) & (claimed < 0)
        scene_features = np.concatenate(new) if new else np.empty((0, features.shape[-1]), np.float32)
        probability = classify(np.concatenate([scene_features, features[alone]]))
        scene_probability, result[alone] = probability[: len(scene_features)], probability[len(scene_features) :]
        result[claimed >= 0] = scene_probability[claimed[claimed >= 0]]
        start = 0
        for kept, cols in places:
            kept[cols] = scene_probability[start : start + len(cols)]
            start += len(cols)
        return result

    def release(self, before_row: int) -> None:
        """Forget the block rows wholly above pixel row ``before_row``: no later tile reaches them."""
        for block_row in [row for row in self.rows if (row + 1) * PROBABILITY_STEP <= before_row]:
            del self.rows[block_row]

    def _tile_rows(self, origin: tuple[int, int], shape: tuple[int, int]) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(row in the tile, columns of the kept row, kept row) for each of the tile's rows of whole scene blocks.

        ``shape`` is the tile's (rows, cols) of blocks. A tile off the block grid has none: its blocks are not
        the scene's.
        """
        top, left = origin
        if top % PROBABILITY_STEP or left % PROBABILITY_STEP:
            return []
        first_row, first_col = top // PROBABILITY_STEP, left // PROBABILITY_STEP
        cols = np.arange(first_col, min(first_col + shape[1], self.whole_cols))
        last_row = min(first_row + shape[0], self.whole_rows)
        return [(row - first_row, cols, self._kept(row)) for row in range(first_row, last_row)]

    def _kept(self, block_row: int) -> np.ndarray:
        if block_row not in self.rows:
            self.rows[block_row] = np.full(self.whole_cols, UNKNOWN, dtype=np.float32)
        return self.rows[block_row]
