from pathlib import Path

import numpy as np
import pytest
import rasterio

import backend.cloud_blocks as cloud_blocks
from backend.cloud_blocks import SceneBlocks
from backend.tiling import tile_batches
from models.cloudmask import PROBABILITY_STEP, block_features, classify

SAMPLE_S2 = Path(__file__).resolve().parents[2] / "sample" / "ROIs1868_summer_s2_cloudy_19_p30.tif"


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """A 13-band scene of real clouds, 200 x 230 px (neither side a multiple of the tile stride)."""
    with rasterio.open(SAMPLE_S2) as source:
        return source.read().astype(np.float32)[:, :200, :230] / 10000


def _run(scene: np.ndarray, blocks: SceneBlocks, size: int, overlap: int, batch: int):
    """Every tile's probabilities through ``blocks``, beside classifying each tile on its own."""
    height, width = scene.shape[1:]
    through_blocks, alone = [], []
    for tiles, next_row in tile_batches(height, width, size, overlap, batch):
        features = np.stack([block_features(scene[:, t.row : t.row + size, t.col : t.col + size]) for t in tiles])
        through_blocks.extend(blocks.probabilities(features, [t.origin for t in tiles]))
        alone.extend(classify(features))
        blocks.release(next_row)
    return np.stack(through_blocks), np.stack(alone)


def test_probabilities_equal_classifying_each_tile_alone(scene):
    through_blocks, alone = _run(scene, SceneBlocks(*scene.shape[1:]), size=64, overlap=16, batch=3)
    np.testing.assert_array_equal(through_blocks, alone)
    assert 0.05 < float((alone > 0.4).mean()) < 0.95  # the scene has clouds and clear ground


def test_each_whole_scene_block_is_classified_once(scene, monkeypatch):
    classified = []
    monkeypatch.setattr(
        cloud_blocks, "classify", lambda features: classified.append(len(features)) or classify(features)
    )
    height, width = scene.shape[1:]
    _run(scene, SceneBlocks(height, width), size=64, overlap=16, batch=3)
    # Rows of tiles start at 0, 48, 96, 136, all on the 8 px block grid, and reach block row 25 (= 200 / 8); the
    # columns start at 0, 48, 96, 144 (on the grid, reaching block column 26) and 166 (off it: those four tiles
    # classify their 8 x 8 blocks alone).
    assert PROBABILITY_STEP == 8
    assert [t.col for t in next(tile_batches(height, width, 64, 16, 5))[0]] == [0, 48, 96, 144, 166]
    assert sum(classified) == 25 * 26 + 4 * 8 * 8


def test_release_forgets_rows_no_later_tile_reaches(scene):
    blocks = SceneBlocks(*scene.shape[1:])
    features = block_features(scene[:, :64, :64])[None]
    blocks.probabilities(features, [(0, 0)])
    assert sorted(blocks.rows) == list(range(64 // PROBABILITY_STEP))
    blocks.release(32)
    assert sorted(blocks.rows) == list(range(32 // PROBABILITY_STEP, 64 // PROBABILITY_STEP))
