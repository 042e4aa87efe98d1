"""The backend's command line: ``python -m backend COMMAND ...``.

Each command lives in its own module, listed in :data:`COMMANDS`, which exposes ``register(subparsers)``: it adds
its parser and sets ``handler`` (a function from the parsed arguments to an exit code) as a default. Only the
module of the command being run is imported, so ``run`` starts without loading the others' dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from backend.errors import BadInputError
from backend.protocol import EXIT_INTERNAL, EXIT_USER_ERROR, encode_event

# command name -> module exposing register(subparsers)
COMMANDS = {
    "run": "backend.commands.run",
    "models": "backend.commands.models",
    "preview": "backend.commands.preview",
    "bench": "backend.commands.bench",
    "train": "backend.commands.train",
    "eval": "backend.commands.eval",
    "eval-sets": "backend.commands.eval_sets",
    "import-checkpoint": "backend.commands.import_checkpoint",
    "cloudmask": "backend.commands.cloudmask",
    "export-onnx": "backend.commands.export_onnx",
    "serve": "backend.commands.serve",
    "batch": "backend.commands.batch",
}


class UsageError(BadInputError):
    """The command line itself is wrong (unknown option, missing value)."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """Raises :class:`UsageError` instead of exiting, so ``--events`` can answer with an ``error`` event."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with one command's subparser (``command``), or all of them (None)."""
    parser = _Parser(prog="python -m backend", description="Cloud removal for Sentinel-2 (QGIS plugin backend).")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if command is not None and name != command:
            continue
        try:
            module: Any = importlib.import_module(module_name)
        except ImportError as error:
            if command is not None:
                raise
            print(f"(command {name} unavailable: {error})", file=sys.stderr)
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command and return its exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = args_list[0] if args_list and args_list[0] in COMMANDS else None
    try:
        parser = build_parser(command)
    except ImportError as error:
        # A broken backend environment: say so in the protocol rather than with a traceback the plugin can't parse.
        message = f"The backend environment is incomplete ({error}); repair or recreate it from the plugin settings"
        if "--events" in args_list:
            print(encode_event("error", code="internal", message=message), flush=True)
        else:
            print(f"Error: {message}", file=sys.stderr)
        return EXIT_INTERNAL
    try:
        args = parser.parse_args(args_list)
    except UsageError as error:
        if "--events" in args_list:
            print(encode_event("error", code=error.code, message=error.message), flush=True)
        else:
            print(f"{error.usage}error: {error.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    return int(handler(args) or 0)
