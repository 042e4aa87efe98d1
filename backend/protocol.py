"""The job protocol between the QGIS plugin and the backend worker: JSON lines, standard library only.

The plugin may import this one backend module (it needs nothing but the standard library). A job is a plain
dict; the worker answers on stdout with one JSON event per line:

``{"event": "started", "algorithm": "dbcr", "tiles": 16}``
``{"event": "progress", "done": 3, "total": 16}``
``{"event": "log", "level": "info", "message": "..."}``
``{"event": "finished", "output": "/path/out.tif", "stats": {...}}``
``{"event": "error", "code": "bad_input", "message": "S1 layer has 1 band; DB-CR needs VV and VH"}``
``{"event": "cancelled"}``

A job is written as a JSON object with the keys of ``backend.job.Job`` and run as
``python -m backend run --job FILE --events`` (a cloud mask: ``python -m backend cloudmask --job FILE --events``
with the keys of :data:`CLOUD_MASK_SETTINGS` plus ``optical``, ``mask`` and ``probability``). :data:`RUN_SETTINGS`
is the one table of the settings' bounds and defaults: the backend validates jobs against it and the plugin
declares its parameters and widgets from it.

Exit codes of ``python -m backend run``: 0 finished, 2 the user must fix something (an ``error`` event with a
sentence says what), 1 an internal failure, 130 cancelled. The worker writes its output under
``partial_path(output)`` and renames it when complete, so a killed worker leaves only that file to remove.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130
# ``python -m backend batch``'s default output name: the (first) optical file's stem + this. The plugin's scene
# list leaves such files out of a folder of inputs.
BATCH_OUTPUT_SUFFIX = "_cloudfree.tif"

EVENT_KINDS = ("started", "progress", "log", "finished", "error", "cancelled")
# The ``code`` of an ``error`` event (backend/errors.py): the plugin may act on it; the message is for the user.
ERROR_CODES = (
    "bad_input",  # an input raster or a parameter cannot be used as given
    "no_overlap",  # S1 and S2 share no ground
    "unreadable_file",  # a file is missing or GDAL cannot read it
    "output",  # the output cannot be written
    "model",  # the model cannot be found or loaded, or does not fit the job
    "device",  # the requested device (CUDA) is not available
    "out_of_memory",  # lower the batch or tile size
    "internal",  # a bug: exit code 1, traceback on stderr
)


@dataclass(frozen=True)
class Setting:
    """One setting of a job: its JSON key, type, bounds and default.

    Attributes:
        name: the job's key (a field of ``backend.job.Job``).
        label: how messages and widgets name it (``Tile size``).
        kind: ``int``, ``float``, ``bool`` or ``str``.
        default: the value a job takes when the key is left out; None where the backend fills it in (the model
            card's NFE and tile size, a quarter of the tile for the overlap).
        minimum: the smallest value allowed, or None.
        maximum: the largest value allowed, or None.
        multiple: a value must divide by this (tile sides: the networks halve a tile up to four times).
        choices: the values a text setting may take, or empty for any.
        unset: what a QGIS number widget shows for "no value" (the default None): 0 for the tile size (the model's
            own), -1 for the overlap (a quarter of the tile); None where the widget may be left empty.
    """

    name: str
    label: str
    kind: type
    default: Any = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    multiple: int = 1
    choices: tuple[str, ...] = ()
    unset: int | None = None

    def problem(self, value: Any) -> str:
        """Return why ``value`` is not allowed (a sentence), or an empty string; None is always allowed."""
        if value is None:
            return ""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and not low <= value <= high:
            return f"{self.label} must be between {low:g} and {high:g}, not {value:g}"
        if low is not None and value < low:
            return f"{self.label} must be {low:g} or more, not {value:g}"
        if high is not None and value > high:
            return f"{self.label} must be {high:g} or less, not {value:g}"
        if self.multiple > 1 and value % self.multiple:
            return f"{self.label} must be a multiple of {self.multiple} pixels, not {value:g}"
        return ""


# The largest tile the backend cuts: 4096 px already needs several GB of memory per tile for the larger networks.
MAX_TILE = 4096
RUN_SETTINGS: Mapping[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("nfe", "NFE", int, None, 1, 50),
        Setting("tile_size", "Tile size", int, None, 32, MAX_TILE, multiple=16, unset=0),
        # below half a tile (checked against the tile in use); the largest tile's bound, for widgets
        Setting("overlap", "Overlap", int, None, 0, MAX_TILE // 2 - 1, unset=-1),
        Setting("batch", "Batch size", int, 4, 1, 256),
        Setting("threads", "Threads", int, None, 1),
        Setting("seed", "Seed", int, 0),
        Setting("device", "Device", str, "auto", choices=("auto", "cpu", "cuda")),  # and cuda:N
        Setting("runtime", "Runtime", str, "torch", choices=("torch", "onnxruntime")),
        Setting("sar_scale", "SAR scale", str, "auto", choices=("auto", "db", "linear")),
        Setting("l2a_offset", "Level-2A offset", bool, False),
        # On by default: clear ground is never touched; only the clouds are filled.
        Setting("keep_clear", "Keep clear pixels", bool, True),
        Setting("cloud_threshold", "Cloud threshold", float, 0.4, 0.01, 0.99),
        Setting("adapt", "Adaptation steps", int, 0, 0, 5000),
        Setting("cog", "Cloud-Optimized GeoTIFF", bool, False),
    )
}
"""The run settings of ``backend.job.Job`` that have bounds, choices or a default, by job key."""

CLOUD_MASK_SETTINGS: Mapping[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("threshold", "Cloud threshold", float, 0.4, 0.01, 0.99),
        Setting("average_over", "Smoothing radius", int, 4, 0, 100),
        Setting("dilation", "Dilation", int, 2, 0, 100),
        Setting("l2a_offset", "Level-2A offset", bool, False),
    )
}
"""The settings of a cloud-mask job (``python -m backend cloudmask``), by job key."""


@dataclass(frozen=True)
class Event:
    """One message from the worker. ``data`` holds the event's own fields (done/total, message, ...)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """Return one field of the event, or ``default``."""
        return self.data.get(key, default)


def encode_event(kind: str, **data: Any) -> str:
    """Return one event as a single JSON line, without the trailing newline."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    return json.dumps({"event": kind, **data}, separators=(",", ":"), default=str)


def decode_event(line: str) -> Event | None:
    """Parse one line of worker output; return None for lines that are not protocol events."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("event") not in EVENT_KINDS:
        return None
    kind = message.pop("event")
    return Event(kind, message)


def job_arguments(command: str, job_file: str) -> list[str]:
    """The command line (after ``python -m backend``) that runs the JSON job in ``job_file`` with events on stdout.

    ``command`` is ``run`` (the keys of ``backend.job.Job``) or ``cloudmask``.
    """
    return [command, "--job", job_file, "--events"]


def partial_path(output: str) -> str:
    """Where the worker writes an output until it is complete."""
    return output + ".partial"


class LineBuffer:
    """Splits a byte stream that arrives in arbitrary chunks into complete text lines."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, chunk: str) -> list[str]:
        """Add a chunk and return the lines it completed."""
        self._pending += chunk
        *lines, self._pending = self._pending.split("\n")
        return lines

    def flush(self) -> list[str]:
        """Return what is left once the stream has ended."""
        rest, self._pending = self._pending, ""
        return [rest] if rest.strip() else []
