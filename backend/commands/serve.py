"""``python -m backend serve``: a warm worker that runs JSON jobs from stdin and keeps its models loaded.

One job per line (the keys of ``run --job``); each is answered on stdout with the JSON-line events of
``run --events``, one job at a time. ``{"cancel": true}`` or SIGINT stops the current job; the end of stdin ends
the worker. See backend/serve_loop.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``serve`` command."""
    parser = subparsers.add_parser(
        "serve",
        help="warm worker: run JSON jobs from stdin, keeping models loaded",
        description="Read one JSON job per line on stdin (the keys of run --job) and answer each with JSON-line "
        'events on stdout, one job at a time. {"cancel": true} or SIGINT stops the current job; end of input '
        "ends the worker.",
    )
    parser.add_argument("--events", action="store_true", help="accepted for symmetry with run: serve always does")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Serve stdin until it ends. Returns the exit code (0)."""
    from backend.reporter import Reporter
    from backend.serve_loop import ServeLoop

    return ServeLoop(Reporter(events=True)).run(sys.stdin)
