"""The s2cloudless cloud probability and mask of a Sentinel-2 raster, written block by block.

s2cloudless classifies each pixel on its own; only the mask's averaging and dilation look at neighbours, so each
block is read with a halo of :data:`HALO` pixels and cropped back, and the result has no seams at block edges.
A :class:`CloudMaskJob` says what to write; :func:`write_cloud_mask` writes it. The ``cloudmask`` command and a
run's extra cloud-mask output both call them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.windows import Window

from backend.errors import BadInputError, OutputError
from backend.protocol import CLOUD_MASK_SETTINGS
from backend.raster_io import OpticalSource
from backend.reporter import Reporter
from backend.writer import block_size, open_output
from models.card import S2_L1C_BANDS

# Wider than s2cloudless's averaging kernel plus the dilation disk at their largest sensible settings.
HALO = 16
MASK_NODATA = 255
PROBABILITY_NODATA = -1.0


@dataclass(frozen=True)
class CloudMaskJob:
    """What to compute from one Sentinel-2 raster, and where to write it.

    Attributes:
        optical: Sentinel-2 L1C (13 bands) or L2A (12 bands) raster, DN x 10000.
        mask: GeoTIFF for the cloud mask (uint8: 1 cloud, 0 clear, 255 no data), or None.
        probability: GeoTIFF for the cloud probability (float32, 0-1, -1 no data), or None.
        threshold: probability above which a pixel is cloud.
        average_over: radius (pixels) of the probability's smoothing before thresholding.
        dilation: radius (pixels) added around every cloud.
        l2a_offset: subtract the 1000 DN offset of Sentinel-2 processing baseline 04.00 and later.
    """

    optical: str
    mask: str | None = None
    probability: str | None = None
    threshold: float = CLOUD_MASK_SETTINGS["threshold"].default
    average_over: int = CLOUD_MASK_SETTINGS["average_over"].default
    dilation: int = CLOUD_MASK_SETTINGS["dilation"].default
    l2a_offset: bool = CLOUD_MASK_SETTINGS["l2a_offset"].default

    def __post_init__(self) -> None:
        """Check every field; raise :class:`BadInputError` or :class:`OutputError` with a sentence."""
        if not self.optical:
            raise BadInputError("No optical (Sentinel-2) raster given")
        if not self.mask and not self.probability:
            raise BadInputError("Give a mask, a probability output or both: there is nothing to write")
        for name, setting in CLOUD_MASK_SETTINGS.items():
            problem = setting.problem(getattr(self, name))
            if problem:
                raise BadInputError(problem)
        for path in (self.mask, self.probability):
            if path and not path.lower().endswith((".tif", ".tiff")):
                raise OutputError(f"Output {path} must be a GeoTIFF file ending in .tif or .tiff")
        if self.mask and self.probability and self.mask == self.probability:
            raise OutputError("The mask and the probability are the same file; choose two file names")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CloudMaskJob:
        """Build a job from a JSON object, with sentences for unknown keys and wrong types."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise BadInputError(f"Unknown cloud mask field {', '.join(unknown)}; known fields: {', '.join(fields)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:
                continue
            setting = CLOUD_MASK_SETTINGS.get(key)
            kind = setting.kind if setting is not None else str
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise BadInputError(f"Cloud mask field {key} must be {kind.__name__}, not {value!r}")
            values[key] = value
        if "optical" not in values:
            raise BadInputError("The cloud mask job has no optical; it is required")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The job as a JSON-ready dict (the keys :meth:`from_dict` reads)."""
        return dataclasses.asdict(self)


def blocks(height: int, width: int, size: int) -> Iterator[Window]:
    """Windows of at most size x size covering the raster, row by row."""
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def with_halo(window: Window, halo: int, height: int, width: int) -> Window:
    """The window grown by ``halo`` pixels on each side, clamped to the raster."""
    col, row = max(0, int(window.col_off) - halo), max(0, int(window.row_off) - halo)
    right = min(width, int(window.col_off + window.width) + halo)
    bottom = min(height, int(window.row_off + window.height) + halo)
    return Window(col, row, right - col, bottom - row)


def write_cloud_mask(job: CloudMaskJob, reporter: Reporter) -> dict[str, Any]:
    """Compute and write the job's rasters; return the cloud fraction and timing."""
    from models.cloudmask import cloud_probability, mask_from_probability

    started = time.time()
    source = OpticalSource(job.optical, S2_L1C_BANDS, 10000.0, job.l2a_offset, "Cloud mask", "s2cloudless")
    with source, ExitStack() as outputs:
        grid = source.grid
        probability_out = mask_out = None
        if job.probability:
            probability_out = outputs.enter_context(
                open_output(job.probability, grid, ["cloud probability"], np.dtype("float32"), PROBABILITY_NODATA)
            )
        if job.mask:
            mask_out = outputs.enter_context(
                open_output(job.mask, grid, ["cloud mask"], np.dtype("uint8"), MASK_NODATA)
            )
        size = max(block_size(grid.width), 512)
        windows = list(blocks(grid.height, grid.width, size))
        reporter.emit("started", algorithm="cloudmask", tiles=len(windows))
        cloudy = valid_count = 0
        for done, window in enumerate(windows, start=1):
            outer = with_halo(window, HALO, grid.height, grid.width)
            reflectance, valid = source.read(outer)
            probability = cloud_probability(reflectance, S2_L1C_BANDS)
            inner = np.s_[
                int(window.row_off - outer.row_off) : int(window.row_off - outer.row_off + window.height),
                int(window.col_off - outer.col_off) : int(window.col_off - outer.col_off + window.width),
            ]
            keep = valid[inner]
            if probability_out is not None:
                values = np.where(keep, probability[inner], PROBABILITY_NODATA).astype(np.float32)
                probability_out.write(values[None], window=window)
            mask = mask_from_probability(probability, job.threshold, job.average_over, job.dilation)[inner]
            if mask_out is not None:
                mask_out.write(np.where(keep, mask, MASK_NODATA).astype(np.uint8)[None], window=window)
            cloudy += int((mask & keep).sum())
            valid_count += int(keep.sum())
            reporter.emit("progress", done=done, total=len(windows))
    fraction = cloudy / valid_count if valid_count else 0.0
    reporter.log("info", f"Cloud cover: {100 * fraction:.1f} % of valid pixels (threshold {job.threshold})")
    return {"cloud_fraction": round(fraction, 4), "seconds": round(time.time() - started, 3)}
