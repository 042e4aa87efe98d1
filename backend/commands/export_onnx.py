"""``python -m backend export-onnx NAME_OR_PATH [--tile N] [--out FILE]``: one denoiser step as an ONNX graph.

The graph takes static ``tile`` x ``tile`` inputs and a dynamic batch, and carries the model card in its metadata
(``model_card``). Without ``--out`` it is written where ``python -m backend run --runtime onnxruntime`` looks for
it (``backend.runtime.onnx_cache_path``), so exporting ahead of a run saves the run the export. DE also needs its
reference network: it is exported beside the DE graph (``<out>.reference.onnx``, or its own cache entry).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from backend.errors import BackendError, BadInputError
from backend.job import TILE_MULTIPLE, TILE_RANGE
from backend.protocol import EXIT_OK, EXIT_USER_ERROR


def register(subparsers: Any) -> None:
    """Add the ``export-onnx`` command."""
    parser = subparsers.add_parser(
        "export-onnx",
        help="export a model's denoiser step to ONNX (for --runtime onnxruntime)",
        description="Export one denoiser step of a model to an ONNX file with the model card in its metadata.",
    )
    parser.add_argument("model", help="model name or .safetensors file")
    parser.add_argument("--tile", type=int, default=None, help="tile side in pixels (default: the model card's)")
    parser.add_argument("--out", type=Path, default=None, help="ONNX file to write (default: the runtime's cache)")
    parser.set_defaults(handler=handle)


def export_model(model: str, tile: int | None = None, out: Path | None = None) -> list[Path]:
    """Export a model (and, for DE, its reference network); return the files written.

    Raises:
        BackendError: the model cannot be loaded or exported, or the tile size is invalid.
    """
    from backend.runtime import export_network, onnx_cache_path
    from backend.worker import load_network, reference_model_name

    network, card, weights = load_network(model)
    size = tile or card.tile_size
    if not TILE_RANGE[0] <= size <= TILE_RANGE[1] or size % TILE_MULTIPLE:
        raise BadInputError(
            f"Tile size must be a multiple of {TILE_MULTIPLE} between {TILE_RANGE[0]} and {TILE_RANGE[1]}, not {size}"
        )
    if out is not None and out.suffix.lower() != ".onnx":
        raise BadInputError(f"Output {out} must be an ONNX file ending in .onnx")
    if out is not None and not out.parent.is_dir():
        raise BadInputError(f"Output folder {out.parent} does not exist; create it or choose another")
    written = [export_network(network, card, size, out or onnx_cache_path(weights, size))]
    if card.algorithm == "de":
        reference, reference_card, reference_weights = load_network(reference_model_name(card, weights))
        target = out.with_name(f"{out.stem}.reference.onnx") if out else onnx_cache_path(reference_weights, size)
        written.append(export_network(reference, reference_card, size, target))
    return written


def handle(args: argparse.Namespace) -> int:
    """Export and print the files written; a user error is a sentence and exit code 2."""
    try:
        paths = export_model(args.model, args.tile, args.out)
    except BackendError as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    for path in paths:
        print(path)
    return EXIT_OK
