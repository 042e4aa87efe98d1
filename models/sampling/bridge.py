"""The DB-CR bridge sampler: a small pure function over ``denoise(x_t, t, cond) -> x0_hat`` (k-diffusion style).

It knows nothing of the network: any callable with that contract works (a torch module, an ONNX session, a
test double). Its steps come from :func:`bridge_steps`, outside the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor

from models.sampling.types import Denoiser, StepCallback


@dataclass(frozen=True)
class BridgeSteps:
    """The states the bridge visits, from the cloudy image (t = T) to the clean estimate (t = 0).

    Attributes:
        timesteps: NFE + 1 integer timesteps, T first and 0 last.
        alphas: a_t at those timesteps, shape (NFE + 1,), in the schedule's dtype.
    """

    timesteps: list[int]
    alphas: Tensor


def uniform_timesteps(nfe: int, timesteps: int) -> list[int]:
    """NFE + 1 integer timesteps from T down to 0, uniformly spaced (the paper's schedule of steps)."""
    if nfe < 1:
        raise ValueError("NFE must be at least 1")
    return [round(timesteps * (nfe - i) / nfe) for i in range(nfe + 1)]


def bridge_steps(nfe: int, alphas: Tensor) -> BridgeSteps:
    """The steps of an ``nfe``-evaluation run on a bridge schedule a_t (t = 0..T, shape (T + 1,))."""
    timesteps = uniform_timesteps(nfe, len(alphas) - 1)
    return BridgeSteps(timesteps, alphas[timesteps])


def sample_bridge(
    denoise: Denoiser, x: Tensor, steps: BridgeSteps, cond: Any, callback: StepCallback | None = None
) -> Tensor:
    """Run the deterministic bridge from the cloudy image ``x`` to the clean estimate.

    Each step predicts x0 and moves along the bridge: x_prev = (a_prev / a_t) x_t + (1 - a_prev / a_t) x0_hat,
    which for a_t = t is the paper's OT-ODE update. One step (NFE = 1) is a single forward pass.

    Args:
        denoise: the network wrapped as ``denoise(x_t, t, cond) -> x0_hat`` with t of shape (B,).
        x: the cloudy image (B, C, H, W), which is the bridge state at t = T.
        steps: from :func:`bridge_steps`.
        cond: passed through to ``denoise`` (the SAR image for DB-CR).
        callback: called as ``callback(done, total)`` after each network evaluation.
    """
    total = len(steps.timesteps) - 1
    for index, ((t, a_t), (_, a_prev)) in enumerate(pairwise(zip(steps.timesteps, steps.alphas, strict=True))):
        t_batch = torch.full((x.shape[0],), float(t), device=x.device, dtype=x.dtype)
        x0_hat = denoise(x, t_batch, cond)
        ratio = float(a_prev / a_t)
        x = ratio * x + (1.0 - ratio) * x0_hat
        if callback is not None:
            callback(index + 1, total)
    return x
