"""A cloud-removal job: what to run on which rasters, validated before anything heavy starts.

A job comes from command-line flags or from a JSON object (the same keys, see :data:`JOB_FIELDS`); both go through
:meth:`Job.from_dict`, so they are checked the same way. Values the model already knows (tile size, NFE, the model
itself) may be left out; :meth:`Job.tiling` fills them from the model card.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.errors import BadInputError, OutputError, UnreadableFileError
from backend.protocol import RUN_SETTINGS, Setting


def _int_bounds(name: str) -> tuple[int, int]:
    setting = RUN_SETTINGS[name]
    assert setting.minimum is not None and setting.maximum is not None, name
    return int(setting.minimum), int(setting.maximum)


SAR_SCALES = RUN_SETTINGS["sar_scale"].choices
RUNTIMES = RUN_SETTINGS["runtime"].choices
# Cloudy dates of one place a job may stack (DiffCR's official models use 3).
MAX_DATES = 3
NFE_RANGE = _int_bounds("nfe")
TILE_RANGE = _int_bounds("tile_size")
# Networks halve the tile up to four times, so a tile side must divide by 16.
TILE_MULTIPLE = RUN_SETTINGS["tile_size"].multiple
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
    """One run of a cloud-removal method over one optical raster (or a few dates of one place).

    Attributes:
        algorithm: method name as in the model registry (``dbcr``, ``diffcr``, ``de``).
        optical: path of the optical raster: Sentinel-2 (L1C 13 bands or L2A 12 bands, DN x 10000), or RGB /
            RGB + NIR (8- or 16-bit, georeferenced or not) for models of visible bands. The output is on its grid.
        output: path of the GeoTIFF to write (.tif or .tiff); its folder must exist.
        extra_optical: further cloudy dates of the same place for multi-date models (DiffCR), in date order after
            ``optical``; warped onto its grid when theirs differs. In a JSON job ``optical`` may also be a list.
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
        runtime: ``torch``, or ``onnxruntime`` (the network exported to ONNX for the tile size, cached).
        optical_scale: DN that means reflectance 1.0; None = the model card's (fitted to the image for 8-bit
            models fed wider data, see backend.optical_scale).
        keep_clear: keep clear pixels as they are and use the model's output only under clouds (feathered).
        cloud_threshold: cloud probability (s2cloudless) above which a pixel counts as cloud for ``keep_clear``
            and for scene adaptation.
        adapt: fine-tuning steps on the scene itself before the run (0 = off).
        save_adapted: where to keep the adapted weights (.safetensors), or None.
        cloud_mask_output: also write the input's s2cloudless cloud mask to this GeoTIFF (1 cloud, 0 clear, 255 no
            data), or None; written in the same pass as the result (backend.pass_outputs).
        change_output: also write the per-pixel mean absolute reflectance change to this GeoTIFF, or None.
        cog: write the result as a Cloud-Optimized GeoTIFF (with overviews; the same full-resolution pixels).
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
    extra_optical: tuple[str, ...] = ()
    runtime: str = "torch"
    optical_scale: float | None = None
    keep_clear: bool = bool(RUN_SETTINGS["keep_clear"].default)
    cloud_threshold: float = 0.4
    adapt: int = 0
    save_adapted: str | None = None
    cloud_mask_output: str | None = None
    change_output: str | None = None
    cog: bool = bool(RUN_SETTINGS["cog"].default)

    def __post_init__(self) -> None:
        """Check every field; raise :class:`BadInputError` or :class:`OutputError` with a sentence."""
        if not self.algorithm:
            raise BadInputError("No algorithm given; name one, e.g. dbcr")
        if not self.optical:
            raise BadInputError("No optical (Sentinel-2) raster given")
        for setting in RUN_SETTINGS.values():
            if setting.kind is int:
                _check(setting, getattr(self, setting.name))
        if self.tile_size is not None and self.overlap is not None:
            _check_overlap(self.tile_size, self.overlap)
        if not _DEVICE.match(self.device):
            raise BadInputError(f"Device must be auto, cpu, cuda or cuda:N, not {self.device!r}")
        if self.sar_scale not in SAR_SCALES:
            raise BadInputError(f"SAR scale must be auto, db or linear, not {self.sar_scale!r}")
        if self.runtime not in RUNTIMES:
            raise BadInputError(f"Runtime must be torch or onnxruntime, not {self.runtime!r}")
        if self.optical_scale is not None and not self.optical_scale > 0:
            raise BadInputError(f"Optical scale must be a positive number of DN, not {self.optical_scale}")
        _check(RUN_SETTINGS["cloud_threshold"], self.cloud_threshold)
        if self.save_adapted is not None and not self.save_adapted.endswith(".safetensors"):
            raise BadInputError(f"Adapted weights are saved as .safetensors, not {self.save_adapted}")
        if len(self.optical_paths) > MAX_DATES:
            raise BadInputError(f"{len(self.optical_paths)} optical rasters given; at most {MAX_DATES} dates are used")
        if any(not path for path in self.extra_optical):
            raise BadInputError("An optical date has an empty path; give a raster file for every date")
        self._check_output()

    @property
    def extra_outputs(self) -> dict[str, str]:
        """The extra outputs asked for, by kind (``mask``, ``change``): their paths, from the path fields."""
        paths = {"mask": self.cloud_mask_output, "change": self.change_output}
        return {kind: path for kind, path in paths.items() if path}

    @property
    def optical_paths(self) -> tuple[str, ...]:
        """Every optical date, the first (whose grid the output takes) first."""
        return (self.optical, *self.extra_optical)

    def _check_output(self) -> None:
        if not self.output:
            raise OutputError("No output file given")
        if not self.output.lower().endswith((".tif", ".tiff")):
            raise OutputError(f"Output {self.output} must be a GeoTIFF file ending in .tif or .tiff")
        folder = os.path.dirname(os.path.abspath(self.output))
        if not os.path.isdir(folder):
            raise OutputError(f"Output folder {folder} does not exist; create it or choose another")
        for role, path in (*(("optical", path) for path in self.optical_paths), ("SAR", self.sar)):
            if path and os.path.abspath(path) == os.path.abspath(self.output):
                raise OutputError(f"Output {self.output} is the {role} input; choose another file name")
        for kind, path in self.extra_outputs.items():
            if not path.lower().endswith((".tif", ".tiff")):
                raise OutputError(f"The {kind} output {path} must be a GeoTIFF file ending in .tif or .tiff")
            if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                raise OutputError(f"The folder of the {kind} output {path} does not exist; create it or choose another")
            inputs_and_output = (*self.optical_paths, self.sar, self.output)
            if any(other and os.path.abspath(other) == os.path.abspath(path) for other in inputs_and_output):
                raise OutputError(f"The {kind} output {path} is an input or the output; choose another file name")
        if self.cloud_mask_output and self.change_output:
            if os.path.abspath(self.cloud_mask_output) == os.path.abspath(self.change_output):
                raise OutputError("The mask and change outputs are the same file; choose two file names")

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
        data["extra_optical"] = list(self.extra_optical)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """Build a job from a JSON object or parsed flags, with sentences for unknown keys and wrong types."""
        unknown = sorted(set(data) - set(JOB_FIELDS))
        if unknown:
            raise BadInputError(f"Unknown job field {', '.join(unknown)}; known fields: {', '.join(JOB_FIELDS)}")
        values = {key: _coerce(key, value) for key, value in data.items() if value is not None}
        if isinstance(values.get("optical"), tuple):  # a list of dates: the first is the reference grid
            dates = values.pop("optical")
            if values.get("extra_optical"):
                raise BadInputError("Give the optical dates either as a list in optical or in extra_optical, not both")
            if dates:
                values["optical"], values["extra_optical"] = dates[0], dates[1:]
        for required in ("algorithm", "optical", "output"):
            if required not in values:
                raise BadInputError(f"The job has no {required}; it is required")
        return cls(**values)


JOB_FIELDS = tuple(field.name for field in dataclasses.fields(Job))
_INT_FIELDS = ("nfe", "tile_size", "overlap", "batch", "seed", "threads", "adapt")
_STR_FIELDS = (
    "algorithm", "output", "sar", "model", "device", "sar_scale", "runtime", "save_adapted", "cloud_mask_output",
    "change_output",
)  # fmt: skip
_BOOL_FIELDS = ("l2a_offset", "keep_clear", "cog")


def _paths(key: str, value: Any) -> str | tuple[str, ...]:
    """A path, or a list of paths (``optical`` may be either; ``extra_optical`` is always a list)."""
    if key == "optical" and isinstance(value, str):
        return value
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return value[0] if key == "optical" and len(value) == 1 else tuple(value)
    raise BadInputError(f"Job field {key} must be a file path or a list of file paths, not {value!r}")


def _coerce(key: str, value: Any) -> Any:
    if key in ("optical", "extra_optical"):
        return _paths(key, value)
    if key in ("optical_scale", "cloud_threshold"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInputError(f"Job field {key} must be a number, not {value!r}")
        return float(value)
    if key in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadInputError(f"Job field {key} must be a whole number, not {value!r}")
        return value
    if key in _STR_FIELDS:
        if not isinstance(value, str):
            raise BadInputError(f"Job field {key} must be text, not {value!r}")
        return value.lower() if key in ("algorithm", "device", "sar_scale", "runtime") else value
    if key in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise BadInputError(f"Job field {key} must be true or false, not {value!r}")
        return value
    if key == "sar_bands":
        return parse_sar_bands(value)
    return value


def read_job_file(path: str) -> dict[str, Any]:
    """Read a JSON job object (a run's or a cloud mask's) from a file.

    Raises:
        UnreadableFileError: the file cannot be read.
        BadInputError: it is not one JSON object.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise UnreadableFileError(f"Cannot read job file {path}: {error.strerror or error}") from error
    except json.JSONDecodeError as error:
        raise BadInputError(f"Job file {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadInputError(f"Job file {path} must hold one JSON object")
    return data


def parse_sar_bands(value: Any) -> tuple[int, int]:
    """Parse (VV, VH) 1-based band numbers from ``"2,1"`` or ``[2, 1]``."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        vv, vh = (int(part) for part in parts)
    except (TypeError, ValueError):
        raise BadInputError(f"SAR bands must be two band numbers VV,VH such as 1,2, not {value!r}") from None
    return (vv, vh)


def _check(setting: Setting, value: float | None) -> None:
    problem = setting.problem(value)
    if problem:
        raise BadInputError(problem)


def _check_overlap(tile: int, overlap: int) -> None:
    if not 0 <= overlap < tile / 2:
        raise BadInputError(
            f"Overlap must be at least 0 and less than half the tile ({tile} px), not {overlap}; "
            f"{tile // OVERLAP_DIVISOR} is a good value"
        )
