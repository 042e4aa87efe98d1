"""Run a restorer over a whole raster: read tiles in batches, restore them, blend them, stream the GeoTIFF out.

The pipeline knows nothing of which model runs. It gets a ``restore(optical, sar, origins) -> optical`` callable
(docs/CONTRACTS.md) and the model card, which says which bands, scale and tile size the restorer expects.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backend.bands import is_sentinel2_model
from backend.cloud_blocks import SceneBlocks
from backend.dates import OpticalDates
from backend.errors import BadInputError, CancelledError, ModelError
from backend.job import Job, algorithm_label
from backend.pass_outputs import CloudTally, PassOutputs, PassWriters, open_pass_writers, tile_change
from backend.raster_io import Grid
from backend.read_ahead import read_ahead
from backend.sar import SarSource
from backend.tiling import Tile, blend_weight, count_tiles, pad_to_tile, tile_batches
from backend.writer import StripeWriter, block_for_step, open_output
from models.card import ModelCard
from models.keep_clear import fill_clouds_only
from models.restorers import Restorer

__all__ = ["BatchRun", "Restorer", "run_removal"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


def run_removal(
    job: Job,
    restore: Restorer,
    card: ModelCard,
    *,
    device: torch.device | str = "cpu",
    started: Callable[[int], None] | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    tags: dict[str, str] | None = None,
    outputs: PassOutputs | None = None,
) -> dict[str, Any]:
    """Restore ``job.optical`` (with its further dates, if any) tile by tile and write ``job.output``.

    Args:
        job: the validated job (paths, tiling, batch, scaling options).
        restore: the model's restorer; it receives tensors on ``device``.
        card: the model card (bands, scales, tile size).
        device: where the input tensors are placed.
        started: called once with the number of tiles, after the inputs have been checked.
        progress: called after every batch with (tiles done, tiles in total).
        should_stop: polled before every batch; when it returns True the run stops with :class:`CancelledError`
            and the partial output is removed.
        tags: metadata tags written into the output (model, NFE, ...).
        outputs: what the same pass also does: keep clear pixels, write the cloud mask and the change band.

    Returns:
        Run statistics: tiles, skipped_tiles (no valid pixel), seconds, megapixels, mpix_per_s, sar_coverage, ...

    Raises:
        BackendError: a sentence for the user (bad input, no overlap, output not writable, cancelled, ...).
    """
    label = algorithm_label(card.algorithm)
    tile_size, overlap = job.tiling(card.tile_size)
    stop = should_stop or (lambda: False)
    extras = outputs or PassOutputs()
    clock = time.perf_counter()
    with contextlib.ExitStack() as stack:
        dates = stack.enter_context(OpticalDates(job.optical_paths, card, job.l2a_offset, job.optical_scale, label))
        optical = dates.first
        sar = _open_sar(job, card, optical.grid, label)
        if sar is not None:
            stack.enter_context(sar)
        grid = optical.grid
        optical.check_has_data(job.optical_paths[0])  # an all-nodata raster writes nothing
        total = count_tiles(grid.height, grid.width, tile_size, overlap)
        if started:
            started(total)
        if stop():
            raise CancelledError()
        bands = optical.band_map.output_bands
        kind = optical.band_map.level if is_sentinel2_model(card.optical_bands) else f"{len(bands)} bands"
        log.info(
            "%s: %d x %d pixels, %s, %s, %d date(s), %d tiles of %d px (overlap %d), batch %d",
            label, grid.width, grid.height, kind, optical.dtype, len(job.optical_paths), total, tile_size,
            overlap, job.batch,
        )  # fmt: skip
        tags = {**(tags or {}), "CLOUD_REMOVAL_OPTICAL_SCALE": f"{optical.scale:g}"}
        block = block_for_step(tile_size - overlap)
        dataset = stack.enter_context(open_output(job.output, grid, bands, optical.dtype, optical.nodata, tags, block))
        # A batch stays in one row of tiles (tile_batches), and the rows above that row are final by then.
        stripe_rows = tile_size
        writer = StripeWriter(dataset, len(card.optical_bands), stripe_rows, optical.encode, optical.has_mask)
        passes = open_pass_writers(stack, extras, grid, stripe_rows, tags, block)
        tiles_clouds = CloudTally()
        read_bands = [index for index, source in enumerate(optical.band_map.model_sources) if source is not None]
        blocks = SceneBlocks(grid.height, grid.width)
        batch_run = BatchRun(
            restore, card, grid, overlap, device, writer, extras, passes, tiles_clouds, read_bands, blocks
        )  # fmt: skip
        skipped = done = 0
        # Batches are cut as the run reaches them: nothing here grows with the raster's height. The next batch is
        # read and its clouds found while this one is restored; closed before the inputs are, so no read outlives them.
        batches = tile_batches(grid.height, grid.width, tile_size, overlap, job.batch)
        ready = stack.enter_context(
            contextlib.closing(read_ahead(batches, lambda item: batch_run.read(item[0], dates, sar)))
        )
        for (batch, next_row), read in ready:
            if stop():
                raise CancelledError()
            skipped += batch_run.run(read)
            done += len(batch)
            writer.release(next_row)
            passes.release(next_row)
            if progress:
                progress(done, total)
        writer.finish()
        passes.finish()
    seconds = time.perf_counter() - clock
    megapixels = grid.width * grid.height / 1e6
    return {
        "tiles": total,
        "skipped_tiles": skipped,
        "tile_size": tile_size,
        "overlap": overlap,
        "batch": job.batch,
        "width": grid.width,
        "height": grid.height,
        "seconds": round(seconds, 3),
        "megapixels": round(megapixels, 4),
        "mpix_per_s": round(megapixels / seconds, 4) if seconds > 0 else None,
        "sar_coverage": round(sar.coverage, 4) if sar is not None else None,
        "sar_scale": sar.scale if sar is not None else None,
        "dates": len(job.optical_paths),
        "optical_scale": optical.scale,
        **_cloud_stats(extras, passes, tiles_clouds),
        "cloud_mask_seconds": round(batch_run.mask_seconds, 3),
        "restore_seconds": round(batch_run.restore_seconds, 3),
    }


def _cloud_stats(extras: PassOutputs, passes: PassWriters, tiles_clouds: CloudTally) -> dict[str, Any]:
    """The extra outputs written and the cloud fraction: exact from the written mask, else over the tiles."""
    stats: dict[str, Any] = {}
    written = {kind: path for kind, path in (("mask", extras.mask_path), ("change", extras.change_path)) if path}
    if written:
        stats["extra_outputs"] = written
    if extras.needs_clouds:
        tally = passes.tally if passes.mask is not None else tiles_clouds  # tiles: overlaps count twice
        stats["cloud_fraction"] = round(tally.fraction, 4)
    return stats


def _open_sar(job: Job, card: ModelCard, grid: Grid, label: str) -> SarSource | None:
    if not card.sar_bands:
        if job.sar:
            log.warning("Model %s uses no SAR; the S1 layer is ignored", card.name)
        return None
    if not job.sar:
        raise BadInputError(f"{label} needs a Sentinel-1 layer with VV and VH; none was given")
    return SarSource(job.sar, grid, card.sar_bands, card.sar_db_ranges, job.sar_scale, job.sar_bands, label)


@dataclass(frozen=True)
class ReadBatch:
    """A batch as :meth:`BatchRun.read` hands it over: its tiles with a valid pixel, stacked, with their clouds.

    Attributes:
        batch: every tile of the batch.
        tiles: those with a valid pixel (the writer leaves the others nodata).
        valid: each kept tile's valid pixels, (h, w) bool.
        optical: (B, C, T, T) reflectance on the run's device, tiles padded; None when no tile was kept.
        sar: (B, S, T, T) radar, or None.
        masks: (B, 1, T, T) clouds, 1 = cloud, when the pass needs them, else None.
    """

    batch: list[Tile]
    tiles: list[Tile]
    valid: list[np.ndarray]
    optical: torch.Tensor | None
    sar: torch.Tensor | None
    masks: torch.Tensor | None


@dataclass
class BatchRun:
    """One batch's way through the network: what it needs besides the tiles, fixed for the whole run.

    :meth:`read` runs on the reading thread (``backend.read_ahead``), one batch ahead of :meth:`run`; it alone
    touches the input rasters and the scene's classified blocks.
    """

    restore: Restorer
    card: ModelCard
    grid: Grid
    overlap: int
    device: torch.device | str
    writer: StripeWriter
    extras: PassOutputs
    passes: PassWriters
    tally: CloudTally
    read_bands: list[int]
    blocks: SceneBlocks
    mask_seconds: float = 0.0  # spent finding the tiles' clouds (s2cloudless), reported beside the network's
    restore_seconds: float = 0.0  # spent in the restorer (bridge start, sampler, network): what the pipeline wraps

    def read(self, batch: list[Tile], optical: OpticalDates, sar: SarSource | None) -> ReadBatch:
        """Read one batch's tiles and find their clouds."""
        kept: list[tuple[Tile, np.ndarray, np.ndarray, np.ndarray | None]] = []
        for tile in batch:
            reflectance, valid = optical.read(tile.window)
            if valid.any():
                kept.append((tile, reflectance, valid, sar.read(tile.window)[0] if sar is not None else None))
        tiles, valid_pixels = [item[0] for item in kept], [item[2] for item in kept]
        if not kept:
            return ReadBatch(batch, tiles, valid_pixels, None, None, None)
        size = batch[0].size
        optical_in = torch.from_numpy(np.stack([pad_to_tile(item[1], size) for item in kept])).to(self.device)
        sar_tiles = [pad_to_tile(item[3], size) for item in kept if item[3] is not None]
        sar_in = torch.from_numpy(np.stack(sar_tiles)).to(self.device) if sar_tiles else None
        masks = None
        if self.extras.needs_clouds:
            clock = time.perf_counter()
            self.blocks.release(batch[0].row)  # no tile from this batch on reaches the block rows above it
            masks = self.extras.tile_masks(optical_in, tiles, self.blocks)
            self.mask_seconds += time.perf_counter() - clock
        return ReadBatch(batch, tiles, valid_pixels, optical_in, sar_in, masks)

    def run(self, read: ReadBatch) -> int:
        """Restore and blend one batch from :meth:`read`; return how many tiles had no valid pixel."""
        if read.optical is None:
            return len(read.batch)
        masks = read.masks
        restored = self._restore(read.optical, read.sar, read.tiles, masks)
        inputs = read.optical.detach().float().cpu().numpy() if self.passes.change is not None else None
        mask_values = masks.detach().float().cpu().numpy() if masks is not None else None
        for index, (tile, valid) in enumerate(zip(read.tiles, read.valid, strict=True)):
            weight = blend_weight(tile, self.grid.height, self.grid.width, self.overlap) * valid
            values = restored[index, :, : tile.height, : tile.width]
            self.writer.add(tile, values, weight)
            mask = mask_values[index, :, : tile.height, : tile.width] if mask_values is not None else None
            if mask is not None and self.passes.mask is None:  # a written mask counts its clouds exactly
                self.tally.cloudy += int(np.count_nonzero(mask[0] * valid))
                self.tally.valid += int(np.count_nonzero(valid))
            change = None
            if inputs is not None:
                before = inputs[index, :, : tile.height, : tile.width]
                change = tile_change(values, before, self.read_bands)
            self.passes.add(tile, weight, mask, change)
        return len(read.batch) - len(read.tiles)

    def _restore(
        self, optical: torch.Tensor, sar: torch.Tensor | None, tiles: list[Tile], masks: torch.Tensor | None
    ) -> np.ndarray:
        origins = [tile.origin for tile in tiles]
        with torch.inference_mode():
            if self.extras.keep_clear and masks is not None:
                restored = fill_clouds_only(self._timed, optical, sar, origins, masks, len(self.card.optical_bands))
            else:
                restored = self._timed(optical, sar, origins, mask=masks)
        card = self.card
        expected = (len(tiles), len(card.optical_bands), *optical.shape[-2:])
        if tuple(restored.shape) != expected:
            raise ModelError(f"Model {card.name} returned tiles of shape {tuple(restored.shape)}, expected {expected}")
        result = restored.detach().float().cpu().numpy()
        if not np.isfinite(result).all():
            raise ModelError(
                f"Model {card.name} produced invalid values (NaN or infinity); check the inputs' scale "
                "(reflectance offset, SAR dB or linear) or try another model"
            )
        return result

    def _timed(
        self,
        optical: torch.Tensor,
        sar: torch.Tensor | None,
        origins: list[tuple[int, int]],
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The restorer, its seconds counted (keep-clear calls it only for batches with clouds)."""
        clock = time.perf_counter()
        restored = self.restore(optical, sar, origins, mask=mask)
        if restored.device.type == "cuda":
            torch.cuda.synchronize(restored.device)  # CUDA runs ahead of the host: count the work, not the launch
        self.restore_seconds += time.perf_counter() - clock
        return restored
