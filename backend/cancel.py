"""Cancel by signal: SIGTERM or SIGINT (what QGIS's Cancel and Ctrl+C send) ask the running job to stop.

The first signal only sets an event. The job polls it between batches, and the samplers call back after every
network evaluation (``models.restorers.make_restorer``'s ``callback``), so a run stops within one network call:
the exception unwinds through the writer, which removes the partial output, and the worker answers ``cancelled``.
A network call can last long (a big batch on a CPU), so if the run is still going :data:`GRACE_S` after the first
signal, the worker sends itself a second one. A second signal does not wait for the call: its handler raises
:class:`CancelledError` in the main thread as soon as the current C call returns, which unwinds the same way (no
``os._exit``: every ``finally`` runs and the partial output is removed).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from backend.errors import CancelledError

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# QGIS's Cancel should answer within about 2 s; a CPU batch of the shipped models takes about 1 s.
GRACE_S = 0.5


@contextmanager
def cancel_on_signals() -> Iterator[threading.Event]:
    """Within the block, SIGTERM/SIGINT set the yielded event (poll ``event.is_set``); a second one raises.

    Outside the main thread (where Python cannot set signal handlers) the event is yielded unchanged.
    """
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    timers: list[threading.Timer] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if event.is_set():
            raise CancelledError()
        event.set()
        timers.append(threading.Timer(GRACE_S, os.kill, (os.getpid(), signum)))
        timers[-1].daemon = True
        timers[-1].start()

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield event
    finally:
        for timer in timers:
            timer.cancel()  # the run stopped in time: no second signal
        for sig, old in previous.items():
            signal.signal(sig, old)
