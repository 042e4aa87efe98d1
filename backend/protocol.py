"""The job protocol between the QGIS plugin and the backend worker: JSON lines, standard library only.

The plugin may import this one backend module (it needs nothing but the standard library). A job is a plain
dict; the worker answers on stdout with one JSON event per line:

``{"event": "started", "algorithm": "dbcr", "tiles": 16}``
``{"event": "progress", "done": 3, "total": 16}``
``{"event": "log", "level": "info", "message": "..."}``
``{"event": "finished", "output": "/path/out.tif", "stats": {...}}``
``{"event": "error", "code": "bad_input", "message": "S1 layer has 1 band; DB-CR needs VV and VH"}``
``{"event": "cancelled"}``

Exit codes of ``python -m backend run``: 0 finished, 2 the user must fix something (an ``error`` event with a
sentence says what), 1 an internal failure, 130 cancelled. The worker writes its output under
``partial_path(output)`` and renames it when complete, so a killed worker leaves only that file to remove.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130

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
