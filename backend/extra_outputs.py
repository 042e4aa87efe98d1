"""Extra outputs of a run, written where the job says: the input's cloud mask and a per-pixel change band.

``Job.cloud_mask_output`` gets s2cloudless on the cloudy input (1 cloud, 0 clear, 255 no data) and
``Job.change_output`` the mean absolute reflectance change over the restored bands (float32: where the model changed
the image, and by how much; near 0 on clear ground). Both are computed after the result is complete, block by block.
"""

from __future__ import annotations

import io
from collections.abc import Collection

import numpy as np

from backend.cloud_mask_raster import CloudMaskJob, blocks, write_cloud_mask
from backend.errors import BadInputError
from backend.job import Job
from backend.raster_io import OpticalSource
from backend.reporter import Reporter
from backend.writer import block_size, open_output
from models.card import ModelCard
from models.cloudmask import supports_s2cloudless

CHANGE_NODATA = -1.0


def check_extra_outputs(kinds: Collection[str], card: ModelCard) -> None:
    """Refuse extra outputs (``mask``, ``change``: ``Job.extra_outputs``) the model's bands cannot give, up front."""
    if "mask" in kinds and not supports_s2cloudless(card.optical_bands):
        raise BadInputError("The cloud mask output needs Sentinel-2 bands (s2cloudless); this model has none")


def write_extra_outputs(job: Job, card: ModelCard, reporter: Reporter) -> tuple[dict[str, str], float | None]:
    """Write the job's extra outputs; return their paths by kind and the mask's cloud fraction (if written)."""
    written, fraction = {}, None
    if job.cloud_mask_output:
        mask = CloudMaskJob(
            job.optical, mask=job.cloud_mask_output, threshold=job.cloud_threshold, l2a_offset=job.l2a_offset
        )
        stats = write_cloud_mask(mask, Reporter(events=False, err=io.StringIO()))  # its messages stay inside
        written["mask"], fraction = job.cloud_mask_output, stats["cloud_fraction"]
    if job.change_output:
        written["change"] = write_change(job, card, job.change_output)
    for kind, path in written.items():
        reporter.log("info", f"Wrote the {kind} output {path}")
    return written, fraction


def write_change(job: Job, card: ModelCard, path: str) -> str:
    """Write the mean absolute reflectance difference between the result and the input, per pixel, to ``path``."""
    label = "change"
    with (
        OpticalSource(
            job.optical,
            card.optical_bands,
            card.optical_scale,
            job.l2a_offset,
            label,
            card.name,
            explicit_scale=job.optical_scale,
        ) as before,
        OpticalSource(
            job.output,
            card.optical_bands,
            card.optical_scale,
            job.l2a_offset,
            label,
            card.name,
            explicit_scale=before.scale,
        ) as after,
        open_output(path, before.grid, ["mean absolute reflectance change"], np.dtype("float32"), CHANGE_NODATA) as out,
    ):
        restored = [index for index, source in enumerate(before.band_map.model_sources) if source is not None]
        for window in blocks(before.grid.height, before.grid.width, max(block_size(before.grid.width), 512)):
            a, valid = before.read(window)
            b, _ = after.read(window)
            change = np.abs(b[restored] - a[restored]).mean(axis=0)
            out.write(np.where(valid, change, CHANGE_NODATA).astype(np.float32)[None], window=window)
    return path
