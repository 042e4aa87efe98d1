"""The registry of named models: shipped weight files and bare configs (a plain dict, torchgeo style)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models.card import ModelCard, read_card, read_weights
from models.networks import dbcr, de, de_reference, diffcr, rgb_cloud
from models.step_inputs import STEP_INPUTS

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

NetworkBuilder = Callable[[dict[str, Any]], nn.Module]
# algorithm -> builds its network from the config stored in a card
BUILDERS: dict[str, NetworkBuilder] = {
    "dbcr": lambda config: dbcr.DBCRNet(dbcr.DBCRConfig.from_dict(config)),
    "diffcr": diffcr.build,
    "de": de.build,
    "de-reference": de_reference.build,
    "rgb-cloud": rgb_cloud.build,
}
# bare configs, for counting and for training from scratch: name -> (algorithm, config)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "dbcr-paper": ("dbcr", dbcr.PAPER.to_dict()),
    "dbcr-lite": ("dbcr", dbcr.LITE.to_dict()),
    "diffcr-paper": ("diffcr", dataclasses.asdict(diffcr.DiffCRConfig.paper())),
    "de-paper": ("de", dataclasses.asdict(de.DEConfig.paper())),
    "de-reference-paper": ("de-reference", dataclasses.asdict(de_reference.DEReferenceConfig())),
    "diffcr-lite": ("diffcr", dataclasses.asdict(diffcr.LITE)),
    "de-lite": ("de", dataclasses.asdict(de.LITE)),
    "de-reference-lite": ("de-reference", dataclasses.asdict(de_reference.LITE)),
    "rgb-cloud-lite": ("rgb-cloud", rgb_cloud.LITE.to_dict()),
}
# the model each algorithm uses when the user names none
DEFAULT_MODELS = {"dbcr": "dbcr-lite", "diffcr": "diffcr-lite", "de": "de-lite"}


class ModelNotFoundError(ValueError):
    """The model named by the user is neither shipped nor a readable weights file."""


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``python -m backend models``."""

    name: str
    algorithm: str
    kind: str  # "weights" (a file with a card) or "config" (untrained architecture)
    params: int
    gmacs_256: float
    path: str | None


def shipped_models() -> dict[str, Path]:
    """Weight files shipped in models/weights, by name."""
    return {path.stem: path for path in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def build_network(algorithm: str, config: dict[str, Any]) -> nn.Module:
    """Construct an untrained network of an algorithm from its config dict."""
    if algorithm not in BUILDERS:
        raise ModelNotFoundError(f"unknown algorithm {algorithm!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[algorithm](config)


def resolve_weights(name_or_path: str) -> Path:
    """Find the weights file of a shipped model name or a path."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".safetensors" or path.exists():
        if not path.is_file():
            raise ModelNotFoundError(f"Model file {path} does not exist")
        return path
    shipped = shipped_models()
    if name_or_path in shipped:
        return shipped[name_or_path]
    known = ", ".join(shipped) or "none"
    raise ModelNotFoundError(f"No model named {name_or_path!r}; shipped models: {known}; or give a .safetensors file")


def load_model(name_or_path: str) -> tuple[nn.Module, ModelCard]:
    """Load a shipped model or a weights file: the network (eval mode, CPU) and its card. Runs no pickled code."""
    path = resolve_weights(name_or_path)
    try:
        state, card = read_weights(path)
    except Exception as error:  # safetensors raises several types for a damaged file
        raise ModelNotFoundError(f"Cannot read model file {path}: {error}") from error
    network = build_network(card.algorithm, card.config)
    missing, unexpected = network.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelNotFoundError(
            f"Model file {path} does not match the {card.algorithm} network "
            f"({len(missing)} missing, {len(unexpected)} unexpected weights)"
        )
    return network.eval(), card


def count_params(network: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in network.parameters())


def count_gmacs(algorithm: str, network: nn.Module, config: dict[str, Any], tile: int = 256) -> float:
    """Multiply-accumulates (10^9) of one forward pass on a tile x tile input, from torch's FLOP counter.

    ``network`` may live on the meta device: counting needs shapes, not values, and then costs no arithmetic.
    """
    device = next(network.parameters()).device
    inputs, _, _ = STEP_INPUTS[algorithm](config, 1, tile)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        network(*(x.to(device) for x in inputs))
    return counter.get_total_flops() / 2e9


def _info(name: str, algorithm: str, config: dict[str, Any], path: Path | None) -> ModelInfo:
    with torch.device("meta"):
        network = build_network(algorithm, config)
    gmacs = count_gmacs(algorithm, network, config)
    kind = "config" if path is None else "weights"
    return ModelInfo(name, algorithm, kind, count_params(network), gmacs, None if path is None else str(path))


def list_models() -> list[ModelInfo]:
    """Every shipped model and every bare config, with parameter count and GMACs per 256x256 tile."""
    rows = []
    for name, path in shipped_models().items():
        card = read_card(path)
        rows.append(_info(name, card.algorithm, card.config, path))
    rows += [_info(name, algorithm, config, None) for name, (algorithm, config) in CONFIGS.items()]
    return rows
