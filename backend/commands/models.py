"""``python -m backend models``: every shipped model and bare config, with its size and cost per tile."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from backend.protocol import EXIT_OK, EXIT_USER_ERROR


def register(subparsers: Any) -> None:
    """Add the ``models`` command."""
    parser = subparsers.add_parser("models", help="list models with parameters and GMACs per 256x256 tile")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=handle)


def format_table(rows: Sequence[Any]) -> str:
    """A Markdown table of ``models.registry.ModelInfo`` rows."""
    lines = [
        "| model | algorithm | kind | parameters | GMACs / 256² tile | weights |",
        "|---|---|---|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.algorithm} | {row.kind} | {row.params / 1e6:.2f} M | {row.gmacs_256:.2f} "
            f"| {row.path or '(config only)'} |"
        )
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    """Print the table (or JSON); a damaged weights file is reported as a sentence."""
    from models.registry import list_models

    try:
        rows = list_models()
    except (ValueError, OSError) as error:
        print(f"Error: cannot list the models: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=1))
    else:
        print(format_table(rows))
    return EXIT_OK
