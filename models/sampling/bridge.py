"""The DB-CR bridge sampler: a small pure function over ``denoise(x_t, t, cond) -> x0_hat`` (k-diffusion style).

It knows nothing of the network: any callable with that contract works (a torch module, an ONNX session, a
test double).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor

Denoiser = Callable[[Tensor, Tensor, Any], Tensor]
StepCallback = Callable[[int, int], None]


def uniform_timesteps(nfe: int, timesteps: int) -> list[int]:
    """NFE + 1 integer timesteps from T down to 0, uniformly spaced (the paper's schedule of steps)."""
    if nfe < 1:
        raise ValueError("NFE must be at least 1")
    return [round(timesteps * (nfe - i) / nfe) for i in range(nfe + 1)]


def sample_bridge(
    denoise: Denoiser,
    y: Tensor,
    cond: Any,
    alphas: Tensor,
    nfe: int,
    callback: StepCallback | None = None,
) -> Tensor:
    """Run the deterministic bridge from the cloudy image ``y`` to the clean estimate in ``nfe`` steps.

    Each step predicts x0 and moves along the bridge: x_prev = (a_prev / a_t) x_t + (1 - a_prev / a_t) x0_hat,
    which for a_t = t is the paper's OT-ODE update. NFE = 1 is a single forward pass.

    Args:
        denoise: the network wrapped as ``denoise(x_t, t, cond) -> x0_hat`` with t of shape (B,).
        y: the cloudy image (B, C, H, W), which is the bridge state at t = T.
        cond: passed through to ``denoise`` (the SAR image for DB-CR).
        alphas: a_t for t = 0..T, shape (T + 1,), a_0 = 0 and a_T = 1.
        nfe: the number of network evaluations.
        callback: called as ``callback(step, nfe)`` after each step.
    """
    timesteps = len(alphas) - 1
    steps = uniform_timesteps(nfe, timesteps)
    x = y
    for index, (t, t_prev) in enumerate(pairwise(steps)):
        t_batch = torch.full((y.shape[0],), float(t), device=y.device, dtype=y.dtype)
        x0_hat = denoise(x, t_batch, cond)
        ratio = float(alphas[t_prev] / alphas[t])
        x = ratio * x + (1.0 - ratio) * x0_hat
        if callback is not None:
            callback(index + 1, nfe)
    return x
