"""Cancel by signal: SIGTERM or SIGINT (what QGIS's Cancel and Ctrl+C send) ask the running job to stop.

The first signal only sets an event. The job polls it between batches, and the samplers call back after every
network evaluation (``models.restorers.make_restorer``'s ``callback``), so a run stops within one network call:
the exception unwinds through the writer, which removes the partial output, and the worker answers ``cancelled``.
A second signal does not wait for that call: it raises :class:`CancelledError` where the worker is, which unwinds
the same way.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from backend.errors import CancelledError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def cancel_on_signals() -> Iterator[threading.Event]:
    """Within the block, SIGTERM/SIGINT set the yielded event (poll ``event.is_set``); a second one raises.

    Outside the main thread (where Python cannot set signal handlers) the event is yielded unchanged.
    """
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if event.is_set():
            raise CancelledError()
        event.set()

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
