"""Model cards read inside QGIS without the backend: the safetensors header is plain JSON.

A ``.safetensors`` file starts with the length of its header (8 bytes, little endian) and the header itself, a JSON
object whose ``__metadata__`` holds the model card (``models/card.py`` stores it under ``model_card``). Reading it
needs only the standard library, so the dock shows a card for any weights file (shipped, imported or picked)
without importing torch or starting the backend.
"""

from __future__ import annotations

import html
import json
import shutil
import struct
from pathlib import Path
from typing import Any

CARD_KEY = "model_card"
MAX_HEADER = 100 * 1024 * 1024  # a header larger than this is not a header: the file is damaged
ALGORITHM_LABELS = {"dbcr": "DB-CR", "diffcr": "DiffCR", "de": "DE"}


class CardError(ValueError):
    """A weights file has no readable model card (a sentence for the user)."""


def read_card(path: Path) -> dict[str, Any]:
    """Return the model card stored in a ``.safetensors`` file's header.

    Raises:
        CardError: the file cannot be read, is not a safetensors file, or has no card.
    """
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise CardError(f"{path.name} is too short to be a weights file.")
            (length,) = struct.unpack("<Q", prefix)
            if not 0 < length <= MAX_HEADER:
                raise CardError(f"{path.name} is not a safetensors weights file.")
            header = json.loads(handle.read(length).decode("utf-8"))
    except OSError as error:
        raise CardError(f"Cannot read {path}: {error.strerror or error}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CardError(f"{path.name} is not a safetensors weights file.") from None
    metadata = header.get("__metadata__") or {} if isinstance(header, dict) else {}
    if CARD_KEY not in metadata:
        raise CardError(f"{path.name} has no model card: it was not written by this plugin or its importer.")
    try:
        card = json.loads(metadata[CARD_KEY])
    except json.JSONDecodeError:
        raise CardError(f"The model card of {path.name} is damaged.") from None
    if not isinstance(card, dict):
        raise CardError(f"The model card of {path.name} is damaged.")
    return card


def imported_models(folder: Path, algorithm: str | None = None) -> dict[str, Path]:
    """Return the imported weights files in ``folder`` (by file stem), of ``algorithm`` when given."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            card = read_card(path)
        except CardError:
            continue
        if algorithm is None or card.get("algorithm") == algorithm:
            found[path.stem] = path
    return found


def import_model(source: Path, folder: Path) -> Path:
    """Copy a weights file into ``folder`` after checking its card; return the copy.

    Raises:
        CardError: the file has no card, or a different file of that name was imported before.
    """
    read_card(source)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    if target.exists() and target.resolve() != source.resolve() and target.stat().st_size != source.stat().st_size:
        raise CardError(f"Another model named {source.name} is already imported; rename the file first.")
    if target.resolve() != source.resolve():
        shutil.copyfile(source, target)
    return target


def card_html(card: dict[str, Any] | None, info: dict[str, Any] | None = None) -> str:
    """Return a short HTML summary of a model: bands, tile, NFE, training data, metrics, size and cost.

    Args:
        card: the model card (see ``models/card.py``), or None when only the listing is known.
        info: the model's row of ``python -m backend models --json`` (params, gmacs_256, kind), if known.
    """
    card, info = card or {}, info or {}
    rows: list[tuple[str, str]] = []
    algorithm = str(card.get("algorithm") or info.get("algorithm") or "")
    if algorithm:
        rows.append(("Method", ALGORITHM_LABELS.get(algorithm, algorithm)))
    if card.get("optical_bands"):
        rows.append(("Optical bands", ", ".join(map(str, card["optical_bands"]))))
    if "sar_bands" in card:
        rows.append(("Radar bands", ", ".join(map(str, card["sar_bands"])) or "none"))
    if card.get("tile_size"):
        rows.append(("Tile", f"{card['tile_size']} px"))
    if card.get("default_nfe"):
        rows.append(("Default NFE", str(card["default_nfe"])))
    if info.get("params"):
        cost = f", {float(info['gmacs_256']):.1f} GMACs per 256² tile" if info.get("gmacs_256") else ""
        rows.append(("Size", f"{int(info['params']) / 1e6:.2f} M parameters{cost}"))
    if card.get("training"):
        rows.append(("Trained on", _flatten(card["training"])))
    if card.get("metrics"):
        rows.append(("Metrics", _flatten(card["metrics"])))
    if info.get("kind") == "config" and not card:
        rows.append(("Weights", "not shipped yet: this is the architecture only, it cannot run"))
    text = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    description = f"<p>{html.escape(str(card['description']))}</p>" if card.get("description") else ""
    return f"{description}<table cellspacing='2'>{text}</table>" if rows or description else "<i>No card.</i>"


def _flatten(value: Any, limit: int = 400) -> str:
    """Return nested card values as ``key: value`` pairs on one line, cut at ``limit`` characters."""
    if isinstance(value, dict):
        text = "; ".join(f"{key}: {_flatten(item, limit)}" for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(_flatten(item, limit) for item in value)
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
