"""The warm worker: one ``python -m backend serve`` process per QGIS session, so models stay loaded between runs.

The panel, batch mode and modeler chains all reach the backend through the algorithms' ``processAlgorithm`` and
``backend_process.run_job``, which hands removal jobs here. Processing runs algorithms on worker threads, so a lock
gives the process one job at a time; a second run waits and says so. The process (``worker_process.py``) is started
with the launcher of ``backend_command`` (plugin folder, ``-E -u``); two reader threads put its stdout and stderr
lines on a queue that the job's own thread relays to its feedback, so nothing here touches the GUI thread except a
short shutdown.

A job is one JSON line on the worker's stdin, answered with the events of ``run --events``; Cancel sends
``{"cancel": true}`` and waits for the ``cancelled`` event, leaving the worker running. A worker that stopped
(crash, killed) is started again for the next job, which says so. A backend that cannot serve (it exits before its
first event) makes :func:`run_job` return None, and the caller runs the job one-shot.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsSettings

from .backend_process import CANCELLED, EventRelay, OutputLines, missing_module_message, remove_outputs
from .worker_process import POLL_S, WorkerProcess, keep_gui_alive, stopped_sentence, wait_ready

ENV_WARM_WORKER = "CLOUD_REMOVAL_WARM_WORKER"
"""Environment variable: ``0`` (or ``off``, ``false``, ``no``) runs every job in a fresh process."""

SETTINGS_WARM_WORKER = "cloud_removal/warm_worker"
"""QgsSettings key (bool, default true): keep one backend worker for the session."""

_CANCEL_TIMEOUT_S = 30.0  # the backend stops at the next batch of tiles; a CPU batch may take a while


def enabled() -> bool:
    """Whether removal jobs go through the warm worker (the environment variable wins over the setting)."""
    value = os.environ.get(ENV_WARM_WORKER, "").strip().lower()
    if value:
        return value not in ("0", "off", "false", "no")
    return bool(QgsSettings().value(SETTINGS_WARM_WORKER, True, type=bool))


class WarmWorker:
    """The session's backend worker: started on the first job, restarted after it stopped, one job at a time."""

    def __init__(self) -> None:
        self._jobs = threading.Lock()  # held for a whole job
        self._state = threading.Lock()  # guards _process between a job's thread and shutdown
        self._process: WorkerProcess | None = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id, or None."""
        process = self._process
        return process.pid if process is not None and process.exit_code() is None else None

    def run_job(
        self,
        python: Path,
        job: dict[str, Any],
        output: Path,
        feedback: QgsProcessingFeedback,
        extra_outputs: Sequence[Path] = (),
    ) -> dict[str, Any] | None:
        """Run one removal job (the keys of ``run --job``) on the worker; see ``backend_process.run_job``.

        Returns:
            The ``stats`` of the ``finished`` event, or None when this backend cannot serve (run it one-shot).

        Raises:
            QgsProcessingException: the backend reported an error, the worker stopped, or the user cancelled.
        """
        if not self._jobs.acquire(blocking=False):
            feedback.pushInfo("Another cloud-removal run is using the backend worker; this one waits for it to end…")
            while not self._jobs.acquire(timeout=POLL_S):
                keep_gui_alive()
                if feedback.isCanceled():
                    raise QgsProcessingException(CANCELLED)
        try:
            process = self._ready_process(python, feedback)
            if process is None:
                return None
            return _Job(process, feedback, output, extra_outputs).run(job)
        finally:
            self._jobs.release()

    def shutdown(self) -> None:
        """Stop the worker (QGIS closing, the plugin unloaded); the next job starts a new one."""
        with self._state:
            process, self._process = self._process, None
        if process is not None:
            process.stop()

    def _ready_process(self, python: Path, feedback: QgsProcessingFeedback) -> WorkerProcess | None:
        with self._state:
            process = self._process
        if process is not None and process.python != python:
            self.shutdown()  # another backend was chosen
            process = None
        if process is not None:
            code = process.exit_code()
            if code is None:
                return process
            if not process.reported and not process.stopping:
                feedback.pushWarning(f"{stopped_sentence(code)}.")
        try:
            process = WorkerProcess(python)
        except OSError as error:
            feedback.pushDebugInfo(f"The backend worker could not start ({error}); running the job on its own.")
            return None
        feedback.pushInfo(f"Starting the backend worker (process {process.pid}); it keeps models loaded for next runs.")
        if not wait_ready(process, feedback):
            process.stop()
            feedback.pushInfo(
                "The backend worker did not start (a backend without `serve`?); running the job in its own process."
            )
            return None
        with self._state:
            self._process = process
        return process


class _Job:
    """One job on a ready worker: send it, relay its events, cancel on request, check the outcome."""

    def __init__(
        self, process: WorkerProcess, feedback: QgsProcessingFeedback, output: Path, extra_outputs: Sequence[Path]
    ) -> None:
        self.process = process
        self.feedback = feedback
        self.output = output
        self.outputs = [output, *extra_outputs]
        self.events = EventRelay(feedback)
        self.stderr = OutputLines(feedback.pushConsoleInfo)

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        remove_outputs(*self.outputs)
        try:
            self._drain()  # what the worker printed between jobs
            text = json.dumps(job)
            self.feedback.pushCommandInfo(f"Job for the backend worker (process {self.process.pid}): {text}")
            ended = self.process.send(job) and self._wait()
            self.events.close()
            self.stderr.close()
            return self._outcome(ended)
        except QgsProcessingException:
            remove_outputs(*self.outputs)
            raise

    def _drain(self) -> None:
        while True:
            try:
                item = self.process.lines.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self.process.lines.put(None)  # the worker has gone: _wait sees it
                return
            self._handle(*item)

    def _wait(self) -> bool:
        """Relay events until the job's answer; False when the worker ended first."""
        cancel_sent: float | None = None
        while self.events.answer is None:
            if cancel_sent is None and self.feedback.isCanceled():
                cancel_sent = time.monotonic()
                self.process.send({"cancel": True})
            if cancel_sent is not None and time.monotonic() - cancel_sent > _CANCEL_TIMEOUT_S:
                self.process.popen.kill()  # it did not stop: the next job starts a new one
                self.process.reported = True
                return False
            try:
                item = self.process.lines.get(timeout=POLL_S)
            except queue.Empty:
                keep_gui_alive()
                continue
            if item is None:
                return False
            self._handle(*item)
        return True

    def _handle(self, stream: str, raw: bytes) -> None:
        if stream == "err":
            self.stderr.feed(raw)
            self.process.stderr.append(raw.decode("utf-8", errors="replace").rstrip())
        else:
            self.events.feed(raw)

    def _outcome(self, ended: bool) -> dict[str, Any]:
        if self.feedback.isCanceled() or (self.events.answer is not None and self.events.answer.kind == "cancelled"):
            raise QgsProcessingException(CANCELLED)
        if not ended:
            self.process.reported = True
            if self.process.stopping:
                raise QgsProcessingException("The backend worker was shut down (QGIS closing or the plugin unloaded).")
            code = self.process.exit_code(wait=5.0)
            last = self.process.stderr[-1] if self.process.stderr else "no message"
            raise QgsProcessingException(
                f"{stopped_sentence(code)} for the next run. This run was lost; a killed worker is often the system "
                f"running out of memory (try a smaller tile size). Its last words: {last}"
            )
        error = self.events.error
        if error is not None:
            message = str(error.get("message") or "The backend reported an error.")
            missing = missing_module_message(self.process.python, [message]) if error.get("code") == "internal" else ""
            raise QgsProcessingException(missing or message)
        if not self.output.is_file():
            raise QgsProcessingException(f"The backend finished but wrote no output at {self.output}.")
        finished = self.events.finished
        stats = finished.get("stats") if finished is not None else None
        return dict(stats) if isinstance(stats, dict) else {}


WORKER = WarmWorker()
"""The session's worker."""


def run_job(
    python: Path, job: dict[str, Any], output: Path, feedback: QgsProcessingFeedback, extra_outputs: Sequence[Path]
) -> dict[str, Any] | None:
    """Run a removal job on the session's worker; None: this backend cannot serve, run it one-shot."""
    return WORKER.run_job(python, job, output, feedback, extra_outputs)


def shutdown() -> None:
    """Stop the session's worker (plugin unload, QGIS quitting)."""
    WORKER.shutdown()
