"""Extra outputs of a run, written beside the result: the input's cloud mask and a per-pixel change band.

``out.tif`` gets ``out_cloudmask.tif`` (s2cloudless on the cloudy input: 1 cloud, 0 clear, 255 no data) and
``out_change.tif`` (mean absolute reflectance change over the restored bands, float32: where the model changed the
image, and by how much; near 0 on clear ground). Both are computed after the result is complete, block by block.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from backend.commands.cloudmask import blocks, write_cloud_mask
from backend.errors import BadInputError
from backend.job import Job
from backend.raster_io import OpticalSource
from backend.reporter import Reporter
from backend.writer import block_size, open_output
from models.card import ModelCard
from models.cloudmask import supports_s2cloudless

EXTRA_OUTPUTS = {"mask": "_cloudmask", "change": "_change"}
CHANGE_NODATA = -1.0


def extra_output_path(output: str, kind: str) -> str:
    """``out.tif`` -> ``out_cloudmask.tif`` / ``out_change.tif``."""
    path = Path(output)
    return str(path.with_name(path.stem + EXTRA_OUTPUTS[kind] + ".tif"))


def check_extra_outputs(kinds: tuple[str, ...], card: ModelCard) -> None:
    """Refuse extra outputs the model's bands cannot give, before the run starts."""
    if "mask" in kinds and not supports_s2cloudless(card.optical_bands):
        raise BadInputError("The cloud mask output needs Sentinel-2 bands (s2cloudless); this model has none")


def write_extra_outputs(job: Job, card: ModelCard, reporter: Reporter) -> tuple[dict[str, str], float | None]:
    """Write the job's extra outputs; return their paths by kind and the mask's cloud fraction (if written)."""
    written, fraction = {}, None
    if "mask" in job.extra_outputs:
        path = extra_output_path(job.output, "mask")
        settings = argparse.Namespace(
            optical=job.optical, probability=None, mask=path, threshold=job.cloud_threshold, average_over=4,
            dilation=2, l2a_offset=job.l2a_offset,
        )  # fmt: skip
        stats = write_cloud_mask(settings, Reporter(events=False, err=io.StringIO()))  # its messages stay inside
        written["mask"], fraction = path, stats["cloud_fraction"]
    if "change" in job.extra_outputs:
        written["change"] = write_change(job, card)
    for kind, path in written.items():
        reporter.log("info", f"Wrote the {kind} output {path}")
    return written, fraction


def write_change(job: Job, card: ModelCard) -> str:
    """Mean absolute reflectance difference between the result and the input, per pixel."""
    path = extra_output_path(job.output, "change")
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
