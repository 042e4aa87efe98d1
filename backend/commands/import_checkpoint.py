"""``python -m backend import-checkpoint KIND SRC OUT``: turn an official DiffCR/DE checkpoint into a carded model.

A command module for ``backend/cli.py``: ``register(subparsers)`` adds the sub-command and sets ``handler``, which
returns the process exit code (``backend.protocol`` EXIT_*).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.protocol import EXIT_OK, EXIT_USER_ERROR
from models.importers import KINDS, CheckpointError, import_checkpoint


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``import-checkpoint`` sub-command."""
    parser = subparsers.add_parser(
        "import-checkpoint",
        help="convert an official DiffCR or DE checkpoint into a model file for the plugin",
        description="Reads the authors' .pth/.pt (loaded with weights_only, no code runs) or a .safetensors, "
        "infers the network's configuration from the weights and writes a .safetensors with its model card.",
    )
    parser.add_argument("kind", choices=KINDS, help="which network the checkpoint holds")
    parser.add_argument("src", type=Path, help="the official checkpoint file")
    parser.add_argument("out", type=Path, help="the .safetensors file to write")
    parser.add_argument("--name", help="model name in the card (default: the source file's name)")
    parser.add_argument("--dates", type=int, default=3, help="DiffCR: cloudy dates per sample (official: 3)")
    parser.add_argument("--reference", help="DE: the imported reference network (name or .safetensors) to pair with")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Import the checkpoint; print one line saying what was written, or an error a user can act on."""
    if not args.src.is_file():
        print(f"error: {args.src} does not exist or is not a file", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.out.suffix != ".safetensors":
        print(f"error: the output must end in .safetensors, got {args.out.name}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        card = import_checkpoint(
            args.kind, args.src, args.out, name=args.name, dates=args.dates, reference=args.reference
        )
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    bands = ", ".join(card.optical_bands)
    print(f"wrote {args.out}: {card.algorithm} model {card.name!r} ({bands}), default NFE {card.default_nfe}")
    return EXIT_OK
