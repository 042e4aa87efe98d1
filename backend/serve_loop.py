"""The warm worker: jobs as JSON lines on a stream, answered one at a time with the events of ``run --events``.

A thread reads the stream, so a cancel message (``{"cancel": true}``) is seen while a job runs; it sets the stop
event of the oldest job not yet answered, which the job polls between batches. SIGINT does the same and leaves the
worker running. Every line gets an answer in order: a job's ``finished``, ``error`` or ``cancelled``, or an
``error`` for a line that is not a job. The end of the stream ends the worker once the queued jobs are answered.
Models stay loaded between jobs (:class:`backend.model_cache.ModelCache`).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

from backend.cancel import GRACE_S
from backend.errors import BackendError, BadInputError, CancelledError
from backend.job import Job
from backend.model_cache import ModelCache
from backend.protocol import EXIT_OK
from backend.reporter import Reporter

# (job, reporter, should_stop) -> exit code: backend.worker.execute.
Execute = Callable[[Job, Reporter, Callable[[], bool]], int]

READY_MESSAGE = 'Worker ready: one JSON job per line on stdin, {"cancel": true} stops the current one'


class ServeLoop:
    """Answers the jobs of one input stream.

    Args:
        reporter: where events go (JSON lines on stdout for the plugin).
        cache: the models kept between jobs.
        execute: runs one job (default :func:`backend.worker.execute`).
    """

    def __init__(self, reporter: Reporter, cache: ModelCache | None = None, execute: Execute | None = None) -> None:
        self.reporter = reporter
        self.cache = cache if cache is not None else ModelCache()
        self._execute = execute
        self._lines: queue.Queue[tuple[str, threading.Event] | None] = queue.Queue()
        self._unanswered: deque[threading.Event] = deque()
        self._lock = threading.Lock()
        self._running: threading.Event | None = None  # the stop event of the job now running

    def run(self, stream: TextIO) -> int:
        """Answer every job of ``stream`` until it ends; return the exit code (0)."""
        reader = threading.Thread(target=self._read, args=(stream,), name="serve-stdin", daemon=True)
        reader.start()
        self.reporter.log("info", READY_MESSAGE)
        with self._sigint_cancels():
            while (item := self._lines.get()) is not None:
                line, stop = item
                try:
                    self._answer(line, stop)
                except Exception as error:  # a bug outside the job's own handling: answer it, keep serving
                    traceback.print_exc()
                    message = f"Internal error ({type(error).__name__}: {error}); please report it with the log"
                    self.reporter.emit("error", code="internal", message=message)
                finally:
                    with self._lock:
                        self._unanswered.popleft()
        return EXIT_OK

    def cancel(self) -> bool:
        """Stop the job running (or next to run); False if there is none."""
        with self._lock:
            if not self._unanswered:
                return False
            stop = self._unanswered[0]
            stop.set()
        # A network call may outlast the cancel by seconds: if the job still runs after the grace period, the
        # main thread is interrupted where it is (see backend.cancel), and the job unwinds as cancelled.
        timer = threading.Timer(GRACE_S, self._interrupt, (stop,))
        timer.daemon = True
        timer.start()
        return True

    def _interrupt(self, stop: threading.Event) -> None:
        if self._running is stop and hasattr(signal, "SIGUSR1"):
            os.kill(os.getpid(), signal.SIGUSR1)

    def _read(self, stream: TextIO) -> None:
        for raw in stream:
            line = raw.strip()
            if not line:
                continue
            if _is_cancel(line):
                self.cancel()
                continue
            stop = threading.Event()
            with self._lock:
                self._unanswered.append(stop)
            self._lines.put((line, stop))
        self._lines.put(None)

    def _answer(self, line: str, stop: threading.Event) -> None:
        try:
            job = Job.from_dict(parse_job_line(line))
        except BackendError as error:
            self.reporter.emit("error", code=error.code, message=error.message)
            return
        with self.cache.active(job):
            self._run(job, stop)

    def _run(self, job: Job, stop: threading.Event) -> None:
        from backend.worker import execute

        run = self._execute or execute
        self._running = stop
        try:
            run(job, self.reporter, stop.is_set)
        except CancelledError:  # interrupted outside the job's own handling
            self.reporter.emit("cancelled")
        finally:
            self._running = None

    @contextmanager
    def _sigint_cancels(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            self.cancel()

        def interrupt(signum: int, frame: FrameType | None) -> None:
            running = self._running
            if running is not None and running.is_set():
                raise CancelledError()

        previous = signal.signal(signal.SIGINT, handler)
        previous_usr1 = signal.signal(signal.SIGUSR1, interrupt) if hasattr(signal, "SIGUSR1") else None
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            if previous_usr1 is not None:
                signal.signal(signal.SIGUSR1, previous_usr1)


def parse_job_line(line: str) -> dict[str, Any]:
    """One line of input as a job object (the keys of ``run --job``).

    Raises:
        BadInputError: the line is not a JSON object.
    """
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise BadInputError(f"Not a JSON job ({error.msg} at character {error.pos}): {_clip(line)}") from error
    if not isinstance(data, dict):
        raise BadInputError(f"A job must be a JSON object, not {_clip(line)}")
    return data


def _is_cancel(line: str) -> bool:
    if '"cancel"' not in line:
        return False
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("cancel") is True and len(data) == 1


def _clip(text: str, length: int = 80) -> str:
    return text if len(text) <= length else text[: length - 3] + "..."
