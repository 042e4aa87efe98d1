"""Networks, samplers, model cards and the registry of named models. Never imports qgis.

Scripts can use the networks directly::

    import models
    network, card = models.load("dbcr-lite")  # or a path to a .safetensors file
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from models.card import ModelCard


def load(name_or_path: str) -> tuple[nn.Module, ModelCard]:
    """Load a shipped model or a weights file: ``(network, card)``; see :func:`models.registry.load_model`."""
    from models.registry import load_model

    return load_model(name_or_path)
