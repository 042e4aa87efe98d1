"""A cloud-removal job: what to run on which rasters, validated before anything heavy starts.

A job comes from command-line flags or from a JSON object (the same keys, see :data:`JOB_FIELDS`); both go through
:meth:`Job.from_dict`, so they are checked the same way. Values the model already knows (tile size, NFE, the model
itself) may be left out; :meth:`Job.tiling` fills them from the model card.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.errors import BadInputError, OutputError

SAR_SCALES = ("auto", "db", "linear")
NFE_RANGE = (1, 50)
TILE_RANGE = (32, 4096)
# Networks halve the tile up to four times, so a tile side must divide by 16.
TILE_MULTIPLE = 16
BATCH_RANGE = (1, 256)
# Default overlap = tile / OVERLAP_DIVISOR (64 px for 256 px tiles): wide enough for the blend ramp to hide
# tile-edge effects of a U-Net's receptive field, while adding only ~1.8x tiles over no overlap (MONAI, GeoAI: 25%).
OVERLAP_DIVISOR = 4
ALGORITHM_LABELS = {"dbcr": "DB-CR", "diffcr": "DiffCR", "de": "DE"}
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def algorithm_label(algorithm: str) -> str:
    """Display name of an algorithm for messages (``dbcr`` -> ``DB-CR``)."""
    return ALGORITHM_LABELS.get(algorithm, algorithm.upper())


@dataclass(frozen=True)
class Job:
    """One run of a cloud-removal method over one optical raster.

    Attributes:
        algorithm: method name as in the model registry (``dbcr``, ``diffcr``, ``de``).
        optical: path of the Sentinel-2 raster (L1C 13 bands or L2A 12 bands, DN x 10000).
        output: path of the GeoTIFF to write (.tif or .tiff); its folder must exist.
        sar: path of the Sentinel-1 raster (VV, VH; dB or linear), or None for methods without SAR.
        model: model name or .safetensors path; None = the algorithm's shipped model.
        nfe: sampler steps (network evaluations per tile), 1-50; None = the model card's default.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        tile_size: tile side in pixels; None = the model card's tile size.
        overlap: pixels shared by neighbouring tiles, below half a tile; None = tile / 4.
        batch: tiles per network call.
        l2a_offset: subtract the 1000 DN offset of Sentinel-2 processing baseline 04.00 and later.
        sar_scale: ``auto`` (detect), ``db`` or ``linear``.
        sar_bands: 1-based (VV, VH) bands of the SAR raster; None = from band descriptions, else (1, 2).
        seed: seed of the diffusion methods' starting noise (same seed, same result).
        threads: CPU threads for the network; None = all available cores but one.
    """

    algorithm: str
    optical: str
    output: str
    sar: str | None = None
    model: str | None = None
    nfe: int | None = None
    device: str = "auto"
    tile_size: int | None = None
    overlap: int | None = None
    batch: int = 4
    l2a_offset: bool = False
    sar_scale: str = "auto"
    sar_bands: tuple[int, int] | None = None
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        """Check every field; raise :class:`BadInputError` or :class:`OutputError` with a sentence."""
        if not self.algorithm:
            raise BadInputError("No algorithm given; name one, e.g. dbcr")
        if not self.optical:
            raise BadInputError("No optical (Sentinel-2) raster given")
        _check_range("NFE", self.nfe, NFE_RANGE)
        _check_range("Batch size", self.batch, BATCH_RANGE)
        _check_range("Tile size", self.tile_size, TILE_RANGE)
        if self.tile_size is not None and self.tile_size % TILE_MULTIPLE:
            raise BadInputError(f"Tile size must be a multiple of {TILE_MULTIPLE} pixels, not {self.tile_size}")
        if self.overlap is not None and self.overlap < 0:
            raise BadInputError(f"Overlap must be 0 or more pixels, not {self.overlap}")
        if self.tile_size is not None and self.overlap is not None:
            _check_overlap(self.tile_size, self.overlap)
        if self.threads is not None and self.threads < 1:
            raise BadInputError(f"Threads must be 1 or more, not {self.threads}")
        if not _DEVICE.match(self.device):
            raise BadInputError(f"Device must be auto, cpu, cuda or cuda:N, not {self.device!r}")
        if self.sar_scale not in SAR_SCALES:
            raise BadInputError(f"SAR scale must be auto, db or linear, not {self.sar_scale!r}")
        self._check_output()

    def _check_output(self) -> None:
        if not self.output:
            raise OutputError("No output file given")
        if not self.output.lower().endswith((".tif", ".tiff")):
            raise OutputError(f"Output {self.output} must be a GeoTIFF file ending in .tif or .tiff")
        folder = os.path.dirname(os.path.abspath(self.output))
        if not os.path.isdir(folder):
            raise OutputError(f"Output folder {folder} does not exist; create it or choose another")
        for role, path in (("optical", self.optical), ("SAR", self.sar)):
            if path and os.path.abspath(path) == os.path.abspath(self.output):
                raise OutputError(f"Output {self.output} is the {role} input; choose another file name")

    def tiling(self, card_tile_size: int) -> tuple[int, int]:
        """The (tile size, overlap) to run with, filling unset values from the model card.

        Raises:
            BadInputError: the overlap is not below half the tile.
        """
        tile = self.tile_size or card_tile_size
        overlap = self.overlap if self.overlap is not None else tile // OVERLAP_DIVISOR
        _check_overlap(tile, overlap)
        return tile, overlap

    def to_dict(self) -> dict[str, Any]:
        """The job as a JSON-ready dict (the same keys :meth:`from_dict` reads)."""
        data = dataclasses.asdict(self)
        if self.sar_bands is not None:
            data["sar_bands"] = list(self.sar_bands)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """Build a job from a JSON object or parsed flags, with sentences for unknown keys and wrong types."""
        unknown = sorted(set(data) - set(JOB_FIELDS))
        if unknown:
            raise BadInputError(f"Unknown job field {', '.join(unknown)}; known fields: {', '.join(JOB_FIELDS)}")
        values = {key: _coerce(key, value) for key, value in data.items() if value is not None}
        for required in ("algorithm", "optical", "output"):
            if required not in values:
                raise BadInputError(f"The job has no {required}; it is required")
        return cls(**values)


JOB_FIELDS = tuple(field.name for field in dataclasses.fields(Job))
_INT_FIELDS = ("nfe", "tile_size", "overlap", "batch", "seed", "threads")
_STR_FIELDS = ("algorithm", "optical", "output", "sar", "model", "device", "sar_scale")


def _coerce(key: str, value: Any) -> Any:
    if key in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadInputError(f"Job field {key} must be a whole number, not {value!r}")
        return value
    if key in _STR_FIELDS:
        if not isinstance(value, str):
            raise BadInputError(f"Job field {key} must be text, not {value!r}")
        return value.lower() if key in ("algorithm", "device", "sar_scale") else value
    if key == "l2a_offset":
        if not isinstance(value, bool):
            raise BadInputError(f"Job field l2a_offset must be true or false, not {value!r}")
        return value
    if key == "sar_bands":
        return parse_sar_bands(value)
    return value


def parse_sar_bands(value: Any) -> tuple[int, int]:
    """Parse (VV, VH) 1-based band numbers from ``"2,1"`` or ``[2, 1]``."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        vv, vh = (int(part) for part in parts)
    except (TypeError, ValueError):
        raise BadInputError(f"SAR bands must be two band numbers VV,VH such as 1,2, not {value!r}") from None
    return (vv, vh)


def _check_range(name: str, value: int | None, bounds: tuple[int, int]) -> None:
    if value is not None and not bounds[0] <= value <= bounds[1]:
        raise BadInputError(f"{name} must be between {bounds[0]} and {bounds[1]}, not {value}")


def _check_overlap(tile: int, overlap: int) -> None:
    if not 0 <= overlap < tile / 2:
        raise BadInputError(
            f"Overlap must be at least 0 and less than half the tile ({tile} px), not {overlap}; "
            f"{tile // OVERLAP_DIVISOR} is a good value"
        )
