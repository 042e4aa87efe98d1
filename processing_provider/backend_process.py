"""Runs one backend job and relays its JSON-line events to a Processing feedback.

A removal job (``run``) goes to the session's warm worker (``warm_worker.py``: one ``serve`` process that keeps
models loaded) unless it is turned off or the backend cannot serve. Otherwise, and for other commands, the job (a
dict with the keys of the backend's job) is written to a temporary JSON file and the backend is started as
``<backend python> -m backend run --job FILE --events`` in the plugin folder through ``QgsBlockingProcess``, which
is thread safe and terminates the process when the feedback is cancelled. The file is removed afterwards.
:func:`run_process` runs other commands the same way (``batch``, for many scenes).
Whatever goes wrong ends in a ``QgsProcessingException`` with a sentence the user can act on, and never leaves
a partial or stale output file behind.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import shlex
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qgis.core import QgsBlockingProcess, QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtCore import QProcess

from ..backend import protocol
from .settings import ENV_BACKEND_PYTHON, PLUGIN_DIR, SETTINGS_BACKEND_PYTHON

# QgsBlockingProcess (3.22) can set neither the working directory nor the environment, so a one-line launcher
# does what `cd <plugin folder> && python -m backend ...` would; -E keeps QGIS's PYTHONPATH/PYTHONHOME out of the
# backend's own environment and -u makes every event line reach us as soon as it is printed.
_LAUNCHER = (
    "import os, runpy, sys; folder = sys.argv.pop(1); os.chdir(folder); sys.path.insert(0, folder); "
    "runpy.run_module('backend', run_name='__main__', alter_sys=True)"
)
_STDERR_KEPT = 20
CANCELLED = "Cancelled: the backend was stopped and no output was written."
_MISSING_MODULE = re.compile(r"No module named '?[\w.]+'?")
_PHASES = {"adapt": "Adapting the model to this scene…", "run": "Removing the clouds…"}


def backend_command(python: Path, arguments: Sequence[str], folder: Path = PLUGIN_DIR) -> tuple[str, list[str]]:
    """Return the program and arguments that run ``python -m backend <arguments>`` in ``folder``."""
    return str(python), ["-E", "-u", "-c", _LAUNCHER, str(folder), *arguments]


def run_job(
    python: Path,
    command: str,
    job: dict[str, Any],
    output: Path,
    feedback: QgsProcessingFeedback,
    extra_outputs: Sequence[Path] = (),
) -> dict[str, Any]:
    """Run one backend job that writes ``output`` and relay its events to ``feedback``.

    Args:
        python: the backend environment's Python executable.
        command: the backend command, ``run`` or ``cloudmask``.
        job: the job, JSON-ready (the keys of the backend's job for ``command``).
        output: the GeoTIFF the job writes; it is removed first, and again (with its partial file) when the
            job fails or is cancelled.
        feedback: receives progress (0-100), log lines and errors.
        extra_outputs: further files the job may write (cloud mask, change band), removed like ``output``.

    Returns:
        The ``stats`` of the backend's ``finished`` event (timings, ``cloud_fraction``...), empty if none.

    Raises:
        QgsProcessingException: the backend is missing, reported an error, failed, or the user cancelled.
    """
    problem = backend_problem(python)
    if problem:
        raise QgsProcessingException(problem)
    if command == "run":
        from . import warm_worker  # it imports this module

        if warm_worker.enabled():
            stats = warm_worker.run_job(python, job, output, feedback, extra_outputs)
            if stats is not None:
                return stats
    text = json.dumps(job, indent=1)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="cloud_removal_job_", delete=False) as file:
        file.write(text)
    try:
        feedback.pushCommandInfo(f"Job {file.name}: {text}")
        return _run(python, protocol.job_arguments(command, file.name), output, feedback, extra_outputs)
    finally:
        os.unlink(file.name)


def _run(
    python: Path, arguments: Sequence[str], output: Path, feedback: QgsProcessingFeedback, extra_outputs: Sequence[Path]
) -> dict[str, Any]:
    outputs = [output, *extra_outputs]
    remove_outputs(*outputs)
    events = EventRelay(feedback)
    try:
        run_process(python, arguments, feedback, events)
        if not output.is_file():
            raise QgsProcessingException(f"The backend finished but wrote no output at {output}.")
    except QgsProcessingException:
        remove_outputs(*outputs)
        raise
    stats = events.finished.get("stats") if events.finished is not None else None
    return dict(stats) if isinstance(stats, dict) else {}


def run_process(python: Path, arguments: Sequence[str], feedback: QgsProcessingFeedback, events: EventRelay) -> None:
    """Run ``python -m backend <arguments>`` with ``events`` reading its stdout; stderr goes to the console log.

    Raises:
        QgsProcessingException: the user cancelled, the backend is missing, reported an ``error`` event (its
            message), was killed, or failed.
    """
    command = shlex.join([str(python), "-m", "backend", *arguments])
    feedback.pushCommandInfo(f"cd {shlex.quote(str(PLUGIN_DIR))} && {command}")
    stderr = OutputLines(feedback.pushConsoleInfo)
    # QGIS keeps only a borrowed pointer to each handler: hold the bound methods until the process has ended,
    # or the first chunk calls a freed object and QGIS crashes.
    on_stdout, on_stderr = events.feed, stderr.feed
    process = QgsBlockingProcess(*backend_command(python, arguments))
    process.setStdOutHandler(on_stdout)
    process.setStdErrHandler(on_stderr)
    exit_code = process.run(feedback) if not feedback.isCanceled() else protocol.EXIT_CANCELLED
    events.close()
    stderr.close()
    del on_stdout, on_stderr

    if feedback.isCanceled() or exit_code == protocol.EXIT_CANCELLED:
        raise QgsProcessingException(CANCELLED)
    if process.processError() == QProcess.ProcessError.FailedToStart:
        raise QgsProcessingException(_missing_backend(python))
    if events.error is not None:
        raise QgsProcessingException(str(events.error.get("message") or "The backend reported an error."))
    if process.exitStatus() == QProcess.ExitStatus.CrashExit:
        raise QgsProcessingException(
            "The backend process was killed before it finished (often the system running out of memory). "
            "Try a smaller tile size, close other programs, and run again."
        )
    if exit_code != protocol.EXIT_OK:
        raise QgsProcessingException(_failure(python, exit_code, stderr.last))


def backend_problem(python: Path) -> str:
    """Return why the backend cannot be started (a sentence with the fix), or an empty string."""
    if python.is_file() and os.access(python, os.X_OK):
        return ""
    return _missing_backend(python)


class OutputLines:
    """Decodes a byte stream that arrives in arbitrary chunks into lines, keeping the last few."""

    def __init__(self, on_line: Callable[[str], object]) -> None:
        """Call ``on_line`` with every complete, non-empty line."""
        self._on_line = on_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines = protocol.LineBuffer()
        self.last: deque[str] = deque(maxlen=_STDERR_KEPT)

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add one chunk (QgsBlockingProcess hands a QByteArray) and handle the lines it completes."""
        for line in self._lines.feed(self._decoder.decode(bytes(chunk))):
            self._line(line)

    def close(self) -> None:
        """Handle what is left once the stream has ended."""
        for line in self._lines.feed(self._decoder.decode(b"", final=True)) + self._lines.flush():
            self._line(line)

    def _line(self, line: str) -> None:
        line = line.rstrip("\r")
        if line.strip():
            self.last.append(line)
            self._on_line(line)


class EventRelay(OutputLines):
    """Turns the backend's stdout, one JSON event per line, into feedback calls."""

    def __init__(self, feedback: QgsProcessingFeedback) -> None:
        """Relay to ``feedback``; remember the ``error`` event, if any."""
        super().__init__(self._handle)
        self._feedback = feedback
        self.error: protocol.Event | None = None
        self.finished: protocol.Event | None = None
        self.answer: protocol.Event | None = None  # the job's last word: finished, error or cancelled
        self._phase = "run"

    def _handle(self, line: str) -> None:
        event = protocol.decode_event(line)
        feedback = self._feedback
        if event is None:
            feedback.pushConsoleInfo(line)
        elif event.kind == "progress":
            phase = str(event.get("phase") or "run")
            if phase != self._phase:  # e.g. scene adaptation (--adapt) before the run: the bar restarts per phase
                self._phase = phase
                feedback.pushInfo(_PHASES.get(phase, f"Phase: {phase}"))
            total = event.get("total") or 0
            if total:
                feedback.setProgress(100.0 * float(event.get("done", 0)) / float(total))
        elif event.kind == "log":
            self.log(event)
        elif event.kind == "error":
            self.error = self.answer = event  # run_job raises it as the run's one error message
        elif event.kind == "cancelled":
            self.answer = event
            feedback.pushInfo("The backend stopped and removed its partial output.")
        else:  # started, finished: what the backend chose and measured (tiles, device, timings)
            if event.kind == "finished":
                self.finished = self.answer = event
            feedback.pushInfo(f"Backend {event.kind}: {describe(event.data)}")

    def log(self, event: protocol.Event, prefix: str = "") -> None:
        """Relay a ``log`` event at its level."""
        level, message = str(event.get("level", "info")), prefix + str(event.get("message", ""))
        if level == "debug":
            self._feedback.pushDebugInfo(message)
        elif level == "warning":
            self._feedback.pushWarning(message)
        elif level == "error":
            self._feedback.reportError(message, False)
        else:
            self._feedback.pushInfo(message)


def describe(data: dict[str, Any]) -> str:
    """Return an event's fields (and those of nested objects such as ``stats``) as ``name: value`` pairs."""
    pairs: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            pairs.append(describe(value))
        else:
            pairs.append(f"{key.replace('_', ' ')}: {value}")
    return ", ".join(pair for pair in pairs if pair) or "-"


def remove_outputs(*outputs: Path) -> None:
    """Remove the outputs and their partial files, so a failed run never leaves a file that looks like a result."""
    for path in [path for output in outputs for path in (output, Path(protocol.partial_path(str(output))))]:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise QgsProcessingException(f"Cannot remove {path}: {error.strerror}. Close programs using it.") from None


def _missing_backend(python: Path) -> str:
    return (
        f"The cloud-removal backend is not set up: there is no Python at {python}. In QGIS, open the Cloud removal "
        "panel (Plugins › Cloud Removal) and click “Set up backend…”: it creates one in your QGIS profile. "
        f"Or run `make` once in the plugin folder ({PLUGIN_DIR}), or point the plugin to an existing backend "
        f"environment with the {ENV_BACKEND_PYTHON} environment variable or the QGIS setting "
        f"{SETTINGS_BACKEND_PYTHON}."
    )


def missing_module_message(python: Path, lines: Sequence[str]) -> str:
    """Say how to repair the environment when one of ``lines`` is Python missing a package, else ``""``."""
    found = next((match for line in reversed(lines) if (match := _MISSING_MODULE.search(line))), None)
    if found is None:
        return ""
    return (
        f"The backend environment at {python} is incomplete ({found.group(0)}). "
        "Repair it from the Cloud removal panel (“Set up backend…”), or with `make` in the plugin folder "
        f"({PLUGIN_DIR}) if you created it that way."
    )


def _failure(python: Path, exit_code: int, stderr: deque[str]) -> str:
    missing = missing_module_message(python, list(stderr))
    if missing:
        return missing
    last = stderr[-1].rstrip(".") if stderr else "no message"
    return (
        f"The backend failed with an internal error (exit code {exit_code}): {last}. "
        "The log above has the details; please report them with the plugin's issue tracker."
    )
