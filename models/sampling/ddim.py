"""DE's sampler: deterministic DDIM (η = 0) over an x0 predictor, on the respaced steps of a discrete schedule.

This reproduces the official DE test run (``timestep_respacing='ddim10'``, ``ddim_sample_loop``, ``eta=0``,
``clip_denoised=True``): the steps are the DDIM paper's integer stride, {900, 800, …, 0} for 10 of 1000, and each
step re-derives ε from the (fused) x0 prediction before the update, so the fusion done by the DE adapter
(``models.denoisers.de_denoiser``) is exactly the official per-step fusion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from models.sampling.types import Denoiser, StepCallback


@dataclass(frozen=True)
class DDIMSteps:
    """The timesteps DDIM visits and ᾱ at each of them.

    Attributes:
        timesteps: distinct integer timesteps, highest first.
        alphas_cumprod: ᾱ at those timesteps, shape (len(timesteps),), float64.
    """

    timesteps: list[int]
    alphas_cumprod: torch.Tensor


def ddim_timesteps(nfe: int, num_timesteps: int = 1000) -> list[int]:
    """The timesteps DDIM visits, highest first, as guided-diffusion's ``space_timesteps(T, 'ddim<nfe>')``.

    The smallest integer stride i with len(range(0, T, i)) == nfe wins (10 of 1000 → 0, 100, …, 900). Counts no
    stride can hit fall back to evenly spaced rounded steps from T − 1 down to 0 (a single step uses T − 1).

    Args:
        nfe: the number of steps (network evaluations).
        num_timesteps: T of the training schedule.

    Returns:
        ``nfe`` distinct timesteps in decreasing order.

    Raises:
        ValueError: if nfe is not in [1, T].
    """
    if not 1 <= nfe <= num_timesteps:
        raise ValueError(f"nfe must be between 1 and {num_timesteps}, got {nfe}")
    for stride in range(1, num_timesteps):
        if len(range(0, num_timesteps, stride)) == nfe:
            return list(range(0, num_timesteps, stride))[::-1]
    if nfe == 1:
        return [num_timesteps - 1]
    steps = torch.linspace(num_timesteps - 1, 0, nfe, dtype=torch.float64).round().long().tolist()
    return [int(s) for s in steps]


def ddim_steps(nfe: int, alphas_cumprod: torch.Tensor) -> DDIMSteps:
    """The steps of an ``nfe``-evaluation DDIM run on a training schedule's ᾱ (shape (T,))."""
    timesteps = ddim_timesteps(nfe, alphas_cumprod.shape[0])
    return DDIMSteps(timesteps, alphas_cumprod.to(torch.float64)[timesteps])


def _coefficient(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A float64 scalar as float32 shaped (1, 1, 1, 1) on ``like``'s device (float64 first, as the official)."""
    return value.to(torch.float32).reshape(*([1] * like.dim())).to(like.device)


def sample_ddim(
    denoise: Denoiser, x: torch.Tensor, steps: DDIMSteps, cond: Any, callback: StepCallback | None = None
) -> torch.Tensor:
    """Deterministic DDIM from pure noise to x0.

    Each step: x0 = denoise(x_t, t); ε' = (x_t/√ᾱ_t − x0)/√(1/ᾱ_t − 1);
    x_prev = √ᾱ_prev·x0 + √(1 − ᾱ_prev)·ε' with ᾱ_prev = 1 after the last step (so it returns that x0).

    Args:
        denoise: ``denoise(x_t, t, cond) -> x0_hat`` with integer timesteps.
        x: (B, C, H, W) starting noise (e.g. ``models.sampling.position_noise``).
        steps: from :func:`ddim_steps`.
        cond: passed through to ``denoise``.
        callback: called as ``callback(done, total)`` after each network evaluation.

    Returns:
        (B, C, H, W) the sample.
    """
    ac = steps.alphas_cumprod
    total = len(steps.timesteps)
    batch = x.shape[0]
    for i, step in enumerate(steps.timesteps):
        t = torch.full((batch,), step, dtype=torch.long, device=x.device)
        x0 = denoise(x, t, cond)
        eps = (_coefficient(torch.sqrt(1.0 / ac[i]), x) * x - x0) / _coefficient(torch.sqrt(1.0 / ac[i] - 1), x)
        prev = ac[i + 1] if i + 1 < total else torch.tensor(1.0, dtype=torch.float64)
        x = x0 * float(torch.sqrt(prev)) + float(torch.sqrt(1 - prev)) * eps
        if callback is not None:
            callback(i + 1, total)
    return x
