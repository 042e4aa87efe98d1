"""Turn a network and its card into a restorer: the one callable the backend's tiling engine runs per batch.

``restore(optical, sar, origins) -> optical`` (docs/CONTRACTS.md): reflectance in, reflectance out, in the card's
band order. The method decides how its sampler wraps the network; the tiling decides nothing about models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from models.card import ModelCard
from models.sampling.bridge import sample_bridge
from models.sampling.bridge_schedules import BRIDGE_TIMESTEPS, bridge_schedule

Restorer = Callable[[Tensor, Tensor | None, list[tuple[int, int]]], Tensor]
# A network: a torch module, or anything called like one (models.onnx_step.OnnxModule runs it on ONNX Runtime).
Network = Callable[..., Any]
RestorerFactory = Callable[[Network, ModelCard, int, int], Restorer]

# Reflectance above this is cloud or glint; the DB-CR recipe clips S2 to [0, 10000] DN before scaling.
MAX_REFLECTANCE = 1.0


def dbcr_restorer(network: Network, card: ModelCard, nfe: int, seed: int = 0) -> Restorer:
    """The DB-CR bridge: start at the cloudy image and take ``nfe`` deterministic steps (``seed`` is unused)."""
    del seed  # the bridge is deterministic: no noise to seed
    schedule = card.schedule or {}
    alphas = bridge_schedule(schedule.get("kind", "linear"), int(schedule.get("timesteps", BRIDGE_TIMESTEPS)))

    def restore(optical: Tensor, sar: Tensor | None, origins: list[tuple[int, int]]) -> Tensor:
        del origins  # deterministic: tiles need no shared noise
        if sar is None:
            raise ValueError("DB-CR needs a SAR image")
        with torch.inference_mode():
            y = optical.clamp(0.0, MAX_REFLECTANCE)
            return sample_bridge(network, y, sar, alphas, nfe)

    return restore


def _diffcr(network: Network, card: ModelCard, nfe: int, seed: int = 0) -> Restorer:
    from models.diffusion_restorers import diffcr_restorer

    return diffcr_restorer(network, card, nfe, seed)


def _de(network: Network, card: ModelCard, nfe: int, seed: int = 0) -> Restorer:
    from models.diffusion_restorers import de_restorer

    return de_restorer(network, card, nfe, seed)


RESTORERS: dict[str, RestorerFactory] = {"dbcr": dbcr_restorer, "diffcr": _diffcr, "de": _de}


def make_restorer(
    network: Network, card: ModelCard, nfe: int, seed: int = 0, reference: Network | None = None
) -> Restorer:
    """Build the restorer of the card's algorithm.

    Args:
        network: the method's network (torch module or ONNX stand-in).
        card: its card.
        nfe: sampler steps.
        seed: seeds the diffusion methods' starting noise.
        reference: DE only: its reference network, already loaded (else the DE restorer loads the card's).
    """
    if card.algorithm not in RESTORERS:
        raise ValueError(f"no sampler for algorithm {card.algorithm!r}")
    if reference is not None:
        if card.algorithm != "de":
            raise ValueError(f"only DE takes a reference network, not {card.algorithm}")
        from models.diffusion_restorers import de_restorer

        return de_restorer(network, card, nfe, seed, reference=reference)
    return RESTORERS[card.algorithm](network, card, nfe, seed)
