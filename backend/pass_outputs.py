"""What one pass over the input gives besides the result: the cloud mask, kept clear pixels and a change band.

The pipeline reads each tile once. Where the run needs clouds (keep-clear, or a cloud mask output), the tile's mask
is computed once, there, and serves both: keep-clear fills only the clouds, and the mask output is the same mask
blended over the tiles' overlaps like the result. A mask already computed for part of the scene (scene adaptation
reads the scene's centre and finds its clouds first) is reused for the tiles inside it instead of being computed
again. The change band is the mean absolute reflectance change of each pixel, from the same tiles.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from rasterio.windows import Window

from backend.cloud_blocks import SceneBlocks
from backend.errors import BadInputError
from backend.job import Job
from backend.raster_io import Grid
from backend.tiling import Tile
from backend.writer import MAX_BLOCK, StripeWriter, open_output
from models.card import RGB_BANDS, ModelCard
from models.cloud_fill import tile_cloud_mask
from models.cloudmask import supports_s2cloudless

log = logging.getLogger(__name__)

MASK_NODATA = 255
# A blended mask above this means at least one tile with weight here saw cloud (float rounding stays below).
CLOUD_SEEN = 1e-6
CHANGE_NODATA = -1.0


@dataclass(frozen=True)
class KnownClouds:
    """A cloud mask already computed for a window of the scene (bool (rows, cols), True = cloud)."""

    window: Window
    mask: np.ndarray

    def covers(self, tile: Tile) -> bool:
        """Whether the tile lies entirely inside the window."""
        top, left = int(self.window.row_off), int(self.window.col_off)
        return (
            tile.row >= top
            and tile.col >= left
            and tile.row + tile.height <= top + self.mask.shape[0]
            and tile.col + tile.width <= left + self.mask.shape[1]
        )

    def crop(self, tile: Tile) -> np.ndarray:
        """The tile's part of the mask, (tile.height, tile.width)."""
        top, left = tile.row - int(self.window.row_off), tile.col - int(self.window.col_off)
        return self.mask[top : top + tile.height, left : left + tile.width]


@dataclass(frozen=True)
class PassOutputs:
    """What the pass computes besides the restored tiles.

    Attributes:
        keep_clear: fill only the clouds; clear pixels keep their input values.
        cloud_bands: the model's optical bands (s2cloudless needs Sentinel-2's; RGB the learnt RGB detector).
        threshold: cloud probability above which a pixel is cloud.
        mask_path: where to write the cloud mask (uint8: 1 cloud, 0 clear, 255 no data), or None.
        change_path: where to write the change band (float32, mean absolute reflectance change), or None.
        known: clouds already found for part of the scene, reused for the tiles inside it.
        model_needs_clouds: the model itself starts from the clouds (a local-fill DB-CR), so the pass finds them
            at the job's threshold even with keep-clear off, instead of the model finding them at its default.
    """

    keep_clear: bool = False
    cloud_bands: tuple[str, ...] = ()
    threshold: float = 0.4
    mask_path: str | None = None
    change_path: str | None = None
    known: KnownClouds | None = None
    model_needs_clouds: bool = False

    @property
    def needs_clouds(self) -> bool:
        """Whether the pass must find the clouds of every tile."""
        return self.keep_clear or self.mask_path is not None or self.model_needs_clouds

    def tile_masks(
        self, optical: torch.Tensor, tiles: Sequence[Tile], blocks: SceneBlocks | None = None
    ) -> torch.Tensor:
        """(B, 1, T, T) float cloud masks of a batch, 1 = cloud; padding (beyond the tile) counts as clear.

        ``blocks``: the scene's blocks classified so far, so that tiles' overlaps are not classified again.
        """
        if self.known is not None and all(self.known.covers(tile) for tile in tiles):
            masks = torch.zeros((len(tiles), 1, *optical.shape[-2:]), dtype=optical.dtype)
            for index, tile in enumerate(tiles):
                masks[index, 0, : tile.height, : tile.width] = torch.from_numpy(self.known.crop(tile).astype("float32"))
            return masks.to(optical.device)
        if blocks is None:
            masks = tile_cloud_mask(optical, self.cloud_bands, self.threshold)
        else:
            origins = [tile.origin for tile in tiles]
            masks = tile_cloud_mask(
                optical, self.cloud_bands, self.threshold, lambda features: blocks.probabilities(features, origins)
            )
        for index, tile in enumerate(tiles):  # padded rows and columns are no part of the scene
            masks[index, :, tile.height :, :] = 0
            masks[index, :, :, tile.width :] = 0
        return masks


def pass_outputs(job: Job, card: ModelCard, known: KnownClouds | None = None) -> PassOutputs:
    """What the job asks of the pass, for this model's bands.

    Keep-clear is on by default; for a model whose bands show no clouds it is turned off with a warning (there is
    no mask to keep clear pixels by). A cloud mask output asked for such a model is an error.

    Raises:
        BadInputError: a cloud mask output is asked for and the model's bands show no clouds.
    """
    keep_clear = job.keep_clear
    if keep_clear and not can_find_clouds(card.optical_bands):
        log.warning(
            "No cloud mask can be computed for %s's bands (neither Sentinel-2 nor RGB): clear pixels cannot be kept, "
            "every pixel is the model's output",
            card.name,
        )
        keep_clear = False
    outputs = PassOutputs(
        keep_clear=keep_clear,
        cloud_bands=tuple(card.optical_bands),
        threshold=job.cloud_threshold,
        mask_path=job.cloud_mask_output,
        change_path=job.change_output,
        known=known,
        model_needs_clouds=card.bridge_start == "local_fill" and can_find_clouds(card.optical_bands),
    )
    if outputs.mask_path is not None and not can_find_clouds(card.optical_bands):
        raise BadInputError(
            f"Cannot write a cloud mask: {card.name}'s bands are neither Sentinel-2's (s2cloudless) nor RGB "
            "(the RGB cloud detector); run without the cloud mask output"
        )
    return outputs


def can_find_clouds(bands: Sequence[str]) -> bool:
    """Whether clouds can be found in images of these bands: s2cloudless for Sentinel-2, the learnt detector for RGB."""
    return supports_s2cloudless(bands) or tuple(bands[:3]) == RGB_BANDS


@dataclass
class CloudTally:
    """Cloudy and valid pixels of the written mask: the run's cloud fraction."""

    cloudy: int = 0
    valid: int = 0

    @property
    def fraction(self) -> float:
        """Share of valid pixels that are cloud, 0-1."""
        return self.cloudy / self.valid if self.valid else 0.0


@dataclass
class PassWriters:
    """Stripe writers of the extra outputs, fed with the same tiles and weights as the result's."""

    mask: StripeWriter | None = None
    change: StripeWriter | None = None
    tally: CloudTally = field(default_factory=CloudTally)

    def add(self, tile: Tile, weight: np.ndarray, mask: np.ndarray | None, change: np.ndarray | None) -> None:
        """Accumulate one tile's mask (1, h, w) and change (1, h, w) with the result's blend weight."""
        if self.mask is not None and mask is not None:
            self.mask.add(tile, mask, weight)
        if self.change is not None and change is not None:
            self.change.add(tile, change, weight)

    def release(self, before_row: int) -> None:
        """Write the rows no later tile touches."""
        for writer in (self.mask, self.change):
            if writer is not None:
                writer.release(before_row)

    def finish(self) -> None:
        """Write what is left."""
        for writer in (self.mask, self.change):
            if writer is not None:
                writer.finish()


def open_pass_writers(
    stack: contextlib.ExitStack,
    outputs: PassOutputs,
    grid: Grid,
    stripe_rows: int,
    tags: dict[str, str],
    block: int = MAX_BLOCK,
) -> PassWriters:
    """Open the extra outputs (each under a partial name until the run ends, ``block`` px blocks) and their writers."""
    writers = PassWriters()
    if outputs.mask_path is not None:
        tally = writers.tally

        def encode_mask(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
            # Cloud where any tile that counts here saw cloud: then every pixel the mask calls clear was kept as it
            # was by every tile (keep-clear changes pixels only near a tile's own clouds, within the feather).
            cloud = values[0] > CLOUD_SEEN
            tally.cloudy += int(np.count_nonzero(cloud & valid))
            tally.valid += int(np.count_nonzero(valid))
            return np.where(valid, cloud, MASK_NODATA).astype(np.uint8)[None]

        dataset = stack.enter_context(
            open_output(outputs.mask_path, grid, ["cloud mask"], np.dtype("uint8"), MASK_NODATA, tags, block)
        )
        writers.mask = StripeWriter(dataset, 1, stripe_rows, encode_mask)
    if outputs.change_path is not None:

        def encode_change(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
            return np.where(valid[None], values, CHANGE_NODATA).astype(np.float32)

        names = ["mean absolute reflectance change"]
        dataset = stack.enter_context(
            open_output(outputs.change_path, grid, names, np.dtype("float32"), CHANGE_NODATA, block=block)
        )
        writers.change = StripeWriter(dataset, 1, stripe_rows, encode_change)
    return writers


def tile_change(restored: np.ndarray, optical: np.ndarray, bands: Sequence[int]) -> np.ndarray:
    """(1, h, w) mean absolute reflectance change over ``bands`` (the ones read from the input) of one tile."""
    return np.abs(restored[list(bands)] - optical[list(bands)]).mean(axis=0, keepdims=True)
