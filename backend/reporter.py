"""Tell the caller what the worker is doing: JSON-line events on stdout, or readable lines on stderr.

With ``--events`` (how the QGIS plugin runs the backend) stdout carries nothing but protocol events, one per line;
log records of the ``backend`` and ``models`` loggers and Python warnings become ``log`` events. Without it, a
person at a terminal reads progress and messages on stderr.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from backend.protocol import encode_event

_LOGGERS = ("backend", "models", "py.warnings")


class Reporter:
    """Writes the protocol's events.

    Args:
        events: JSON lines on ``out`` (True) or human-readable text on ``err`` (False).
        out: stream for JSON events (default: stdout).
        err: stream for text (default: stderr).
    """

    def __init__(self, events: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.events = events
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._last_percent = -1

    def emit(self, kind: str, **data: Any) -> None:
        """Send one event (JSON mode) or its readable form (text mode)."""
        if self.events:
            self.out.write(encode_event(kind, **data) + "\n")
            self.out.flush()
            return
        text = self._text(kind, data)
        if text:
            self.err.write(text + "\n")
            self.err.flush()

    def _text(self, kind: str, data: dict[str, Any]) -> str | None:
        if kind == "started":
            details = ", ".join(f"{key} {data[key]}" for key in ("model", "nfe", "device") if key in data)
            return f"Running {data.get('algorithm', '')} ({details}): {data.get('tiles', '?')} tiles"
        if kind == "progress":
            done, total = int(data["done"]), max(1, int(data["total"]))
            percent = 100 * done // total
            # A line per 10% keeps a terminal (or a log file) readable on runs of thousands of tiles.
            if percent // 10 == self._last_percent // 10 and done != total:
                return None
            self._last_percent = percent
            unit = "adaptation steps" if data.get("phase") == "adapt" else "tiles"
            return f"  {done}/{total} {unit} ({percent}%)"
        if kind == "log":
            level = data.get("level", "info")
            return data["message"] if level == "info" else f"{level}: {data['message']}"
        if kind == "finished":
            stats = data.get("stats", {})
            return f"Wrote {data['output']} ({stats.get('tiles', '?')} tiles in {stats.get('seconds', '?')} s)"
        if kind == "error":
            return f"Error: {data['message']}"
        if kind == "cancelled":
            return "Cancelled; no output was written"
        return None

    def log(self, level: str, message: str) -> None:
        """Send a ``log`` event (level: debug, info, warning, error)."""
        self.emit("log", level=level, message=message)


class _ForwardHandler(logging.Handler):
    def __init__(self, reporter: Reporter) -> None:
        super().__init__(logging.INFO)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        self.reporter.log("warning" if level == "warn" else level, record.getMessage())


@contextmanager
def forward_logs(reporter: Reporter) -> Iterator[None]:
    """Within the block, route backend/models log records and Python warnings to ``reporter`` as log events."""
    handler = _ForwardHandler(reporter)
    logging.captureWarnings(True)
    saved = []
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the reporter is the one place messages go; no duplicates on stderr
    try:
        yield
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
        logging.captureWarnings(False)
