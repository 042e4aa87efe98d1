"""The whole scene's coarse local fill, read once before the tiles, for DB-CR and DE models with a local-fill start.

A tile sees only its own 256 pixels: a cloud larger than that would get a different fill in each tile it covers,
and a tile wholly under cloud none at all, so the result shows the tiles. The scene is therefore read once,
averaged down to at most :data:`MAX_SIDE` pixels a side (a Sentinel-2 tile: 22 times smaller), its clouds found
and filled there (``models.cloud_fill.scene_fill``), and every tile's fill falls back on that where it has no clear
ground of its own.
"""

from __future__ import annotations

import logging
import math

from rasterio.windows import Window

from backend.job import Job, algorithm_label
from backend.raster_io import OpticalSource
from models.card import ModelCard
from models.cloud_fill import SceneFill, scene_fill
from models.cloudmask import image_clouds

MAX_SIDE = 512

log = logging.getLogger(__name__)


def coarse_shape(height: int, width: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The (rows, cols) a height x width scene is averaged down to: its shape if it fits, else at most max_side."""
    step = max(1, math.ceil(max(height, width) / max_side))
    return max(1, math.ceil(height / step)), max(1, math.ceil(width / step))


def read_scene_fill(job: Job, card: ModelCard, max_side: int = MAX_SIDE) -> SceneFill:
    """The coarse fill of the job's (first) optical raster in the model's bands, clouds at the job's threshold."""
    path = job.optical_paths[0]
    label = algorithm_label(card.algorithm)
    with OpticalSource(
        path, card.optical_bands, card.optical_scale, job.l2a_offset, label, card.name, explicit_scale=job.optical_scale
    ) as source:
        height, width = source.grid.height, source.grid.width
        rows, cols = coarse_shape(height, width, max_side)
        # A large scene takes a while to read whole: say what happens before the first tile's progress.
        log.info(
            "Finding the scene's clouds at %d x %d px (1/%.0f of the resolution) for the fill of large clouds",
            cols, rows, width / cols,
        )  # fmt: skip
        reflectance, valid = source.read(Window(0, 0, width, height), out_shape=(rows, cols))
    _, clouds = image_clouds(reflectance, card.optical_bands, job.cloud_threshold)
    return scene_fill(reflectance, clouds | ~valid, (height / rows, width / cols))
