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
        rows.append(("Trained on", "\n".join(training_lines(card["training"]))))
    if card.get("metrics"):
        rows.append(("Validation", "\n".join(metric_lines(card["metrics"]))))
    if info.get("kind") == "config" and not card:
        rows.append(("Weights", "not shipped yet: this is the architecture only, it cannot run"))
    text = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{_cell(v)}</td></tr>" for k, v in rows)
    description = f"<p>{html.escape(str(card['description']))}</p>" if card.get("description") else ""
    return f"{description}<table cellspacing='2'>{text}</table>" if rows or description else "<i>No card.</i>"


def _cell(text: str) -> str:
    """A table cell's HTML: the text escaped, its lines kept."""
    return "<br>".join(html.escape(line) for line in text.split("\n"))


def training_lines(training: Any) -> list[str]:
    """What a card's training record tells a user: the data, where training started, its steps and CPU time."""
    if not isinstance(training, dict):
        return [_flatten(training)]
    recipe = training["recipe"] if isinstance(training.get("recipe"), dict) else {}
    lines = [str(training["data"])] if training.get("data") else []
    if training.get("initialised_from"):
        lines.append(f"Started from {training['initialised_from']}.")
    steps = training.get("steps", recipe.get("steps"))
    if isinstance(steps, int) and steps > 0:
        seconds = training.get("seconds")
        cost = f" ({float(seconds) / 3600:.1f} h of CPU)" if isinstance(seconds, (int, float)) and seconds else ""
        lines.append(f"{steps} training steps{cost}.")
    if training.get("kept_step") == 0 or steps == 0:
        lines.append("The shipped weights are the network's start: no trained step did better on validation.")
    return lines or [_flatten(training)]


# The parts of a validation metric's name (as the trainers write them, e.g. ``real_psnr_output_cloud``).
_SUBJECTS = {"output": "output", "cloudy": "cloudy input", "local_fill": "local fill", "reference": "reference network"}
_REGIONS = {"": "whole image", "_cloud": "under cloud", "_clear": "clear pixels"}
# DiffCR's series validation names its output under cloud without the subject.
_ALIASES = {"psnr_cloud": "psnr_output_cloud"}
# Other values the trainers record, by the start of their name.
_OTHER_VALUES = {"iou": "cloud IoU with the labels", "clear_flagged": "share of clear pixels flagged",
                 "bce": "loss", "step": "kept step"}  # fmt: skip


def metric_lines(metrics: Any) -> list[str]:
    """Validation figures in words: PSNR by image subset and region (output first), then the other values.

    Names the trainers write (``psnr_<subject>[_cloud|_clear][_512]``, ``real_`` for real pairs) are spelt out;
    anything unknown is shown as ``name: value``.
    """
    if not isinstance(metrics, dict):
        return [_flatten(metrics)]
    lines: list[str] = []
    for name, values in metrics.items():
        if not isinstance(values, dict):
            lines.append(f"{name}: {_flatten(values)}")
            continue
        title, nfe = _set_title(name)
        groups, rest = _psnr_groups(values)
        for (subset, size, region), parts in sorted(groups.items()):
            lines.append(f"{subset or title}{size}{nfe}, {list(_REGIONS.values())[region]}: {', '.join(parts)} dB")
        # The selection score is the trainer's own yardstick, a mix of the figures above: not for the user.
        others = [f"{_other_name(key)} {_flatten(value)}" for key, value in rest.items() if key != "score"]
        if others:
            lines.append(f"{title}{nfe}: {'; '.join(others)}")
    return lines


def _set_title(name: str) -> tuple[str, str]:
    """``validation_simulated_clouds_nfe1`` -> ("Simulated clouds", ", NFE 1")."""
    words = name.removeprefix("validation_").split("_")
    nfe = [word for word in words if word.startswith("nfe") and word[3:].isdigit()]
    text = " ".join(word for word in words if word not in nfe).replace("s2", "S2").replace("rice2", "RICE2")
    return text[:1].upper() + text[1:], f", NFE {nfe[-1][3:]}" if nfe else ""


def _psnr_groups(values: dict[str, Any]) -> tuple[dict[tuple[str, str, int], list[str]], dict[str, Any]]:
    """PSNR texts (``subject value``, output first) by (subset, size, region's place in _REGIONS); the others."""
    groups: dict[tuple[str, str, int], list[tuple[int, str]]] = {}
    rest: dict[str, Any] = {}
    for key, value in values.items():
        parsed = _parse_psnr(key)
        if parsed is None or not isinstance(value, (int, float)):
            rest[key] = value
            continue
        subset, size, region, subject = parsed
        group = (subset, size, list(_REGIONS.values()).index(region))
        groups.setdefault(group, []).append((list(_SUBJECTS).index(subject), f"{_SUBJECTS[subject]} {value:.2f}"))
    return {group: [text for _, text in sorted(parts)] for group, parts in groups.items()}, rest


def _parse_psnr(key: str) -> tuple[str, str, str, str] | None:
    """``real_psnr_output_cloud_512`` -> ("Real pairs", " (512²)", "under cloud", "output"); None if not PSNR."""
    subset = size = ""
    if key.startswith("real_"):
        key, subset = key.removeprefix("real_"), "Real pairs"
    if key.endswith("_512"):
        key, size = key.removesuffix("_512"), " (512²)"
    key = _ALIASES.get(key, key)
    if not key.startswith("psnr_"):
        return None
    key = key.removeprefix("psnr_")
    for suffix, region in _REGIONS.items():
        subject = key.removesuffix(suffix) if suffix else key
        if (not suffix or key.endswith(suffix)) and subject in _SUBJECTS:
            return subset, size, region, subject
    return None


def _other_name(key: str) -> str:
    """``iou_rice2-512`` -> ``cloud IoU with the labels (rice2-512)``; unknown names as they are."""
    for start, words in _OTHER_VALUES.items():
        if key == start:
            return words
        if key.startswith(f"{start}_"):
            return f"{words} ({key.removeprefix(start + '_')})"
    return key


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
