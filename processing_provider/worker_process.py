"""The warm worker's process: one ``python -m backend serve`` with two reader threads filling a queue of its lines.

The process is started with the launcher of ``backend_command`` (plugin folder, ``-E -u``); its stdout and stderr
are read line by line on daemon threads onto one queue (``None`` once stdout ends), so whichever thread runs a job
relays them without blocking. It is ready once its first event arrives; it is stopped by closing its stdin, and
killed when it does not go in time.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtCore import QCoreApplication, QThread

from .backend_process import CANCELLED, backend_command
from .settings import PLUGIN_DIR

POLL_S = 0.1
READY_TIMEOUT_S = 120.0  # the first start imports numpy/rasterio on a cold disk
STOP_TIMEOUT_S = 3.0
_STDERR_KEPT = 20
Line = tuple[str, bytes] | None  # ("out" | "err", raw line); None: stdout ended


class WorkerProcess:
    """One ``serve`` process, its reader threads and the queue they fill."""

    def __init__(self, python: Path) -> None:
        program, arguments = backend_command(python, ["serve"])
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console window beside QGIS
        self.python = python
        self.popen = subprocess.Popen(
            [program, *arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=str(PLUGIN_DIR), creationflags=flags,
        )  # fmt: skip
        self.lines: queue.Queue[Line] = queue.Queue()
        self.stderr: deque[str] = deque(maxlen=_STDERR_KEPT)
        self.stopping = False  # shut down on purpose: its end is no crash
        self.reported = False  # its end was already told to the user
        assert self.popen.stdout is not None and self.popen.stderr is not None
        for name, stream, end in (("out", self.popen.stdout, True), ("err", self.popen.stderr, False)):
            thread = threading.Thread(
                target=self._read, args=(name, stream, end), name=f"cloud-removal-worker-{name}", daemon=True
            )
            thread.start()

    def _read(self, name: str, stream: IO[bytes], end: bool) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self.lines.put((name, raw))
        except (OSError, ValueError):  # closed under us at shutdown
            pass
        if end:
            self.lines.put(None)

    @property
    def pid(self) -> int:
        """The process id."""
        return int(self.popen.pid)

    def exit_code(self, wait: float = 0.0) -> int | None:
        """The exit code once it has ended (waiting up to ``wait`` seconds), else None."""
        try:
            return self.popen.wait(wait) if wait else self.popen.poll()
        except subprocess.TimeoutExpired:
            return None

    def send(self, message: dict[str, Any]) -> bool:
        """Write one JSON line to its stdin; False when it has gone."""
        stdin = self.popen.stdin
        try:
            assert stdin is not None
            stdin.write((json.dumps(message) + "\n").encode("utf-8"))
            stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """End it: cancel what runs, close its stdin (the worker's end), kill it if it does not go in time."""
        self.stopping = True
        if self.exit_code() is None:
            self.send({"cancel": True})
            try:
                assert self.popen.stdin is not None
                self.popen.stdin.close()
            except OSError:
                pass
            if self.exit_code(timeout) is None:
                self.popen.kill()
                self.exit_code(1.0)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:  # a reader thread may still hold it
                    pass


def stopped_sentence(code: int | None) -> str:
    """What the user reads when the worker ended by itself."""
    return f"The backend worker stopped (exit code {code}); restarting it"


def wait_ready(process: WorkerProcess, feedback: QgsProcessingFeedback) -> bool:
    """Wait for the worker's first event (its ready line); False if it ended first or never answered."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if feedback.isCanceled():
            process.stop()
            raise QgsProcessingException(CANCELLED)
        try:
            item = process.lines.get(timeout=POLL_S)
        except queue.Empty:
            keep_gui_alive()
            continue
        if item is None:
            return False
        stream, raw = item
        line = raw.decode("utf-8", errors="replace").strip()
        if stream == "err":
            process.stderr.append(line)
        elif line.startswith("{") and '"event"' in line:
            feedback.pushDebugInfo(f"Backend worker: {line}")
            return True
    return False


def keep_gui_alive() -> None:
    """Let the GUI repaint when a job runs on the main thread (the Python console, a modeler run without a task)."""
    application = QCoreApplication.instance()
    if application is not None and QThread.currentThread() == application.thread():
        QCoreApplication.processEvents()
