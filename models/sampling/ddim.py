"""DE's sampler: deterministic DDIM (η = 0) over an x0 predictor, on the respaced steps of a discrete schedule.

This reproduces the official DE test run (``timestep_respacing='ddim10'``, ``ddim_sample_loop``, ``eta=0``,
``clip_denoised=True``): the steps are the DDIM paper's integer stride, {900, 800, …, 0} for 10 of 1000, and each
step re-derives ε from the (fused) x0 prediction before the update, so the fusion done by the DE adapter
(``fused_x0``, used by ``models.networks.de.make_denoiser``) is exactly the official per-step fusion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
"""``denoise(x_t, t, cond) -> x0_hat``: x_t (B, C, H, W), t (B,) integer timesteps, cond what the adapter needs."""

StepCallback = Callable[[int, int], None]
"""``callback(done, total)`` after each network evaluation (progress; raise to cancel), as the bridge sampler."""


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


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] as float32 shaped (B, 1, 1, 1) for broadcasting (computed in float64 first, as the official)."""
    out = values.to(t.device)[t.long()].to(torch.float32)
    return out.reshape(-1, *([1] * (like.dim() - 1))).to(like.device)


def fused_x0(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    w: torch.Tensor,
    reference: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    t: torch.Tensor,
    *,
    w_min: float = 0.3,
    clip: bool = True,
) -> torch.Tensor:
    """DE's per-step fusion: x0 = w·ref + (1 − w)·x0_ε with x0_ε from ε and w clamped to [w_min, 1].

    Args:
        x_t: (B, C, H, W) current state.
        eps: (B, C, H, W) predicted noise.
        w: (B, C, H, W) raw weight map from the WA net.
        reference: (B, C, H, W) reference network output in [-1, 1].
        alphas_cumprod: (T,) ᾱ of the training schedule.
        t: (B,) integer timesteps.
        w_min: η, the lower clamp of w (official 0.3).
        clip: clip x0_ε to [-1, 1] before fusing (official ``clip_denoised=True``).

    Returns:
        (B, C, H, W) the fused x0.
    """
    ac = alphas_cumprod.to(torch.float64)
    x0_eps = _at(torch.sqrt(1.0 / ac), t, x_t) * x_t - _at(torch.sqrt(1.0 / ac - 1), t, x_t) * eps
    if clip:
        x0_eps = x0_eps.clamp(-1, 1)
    w = w.clamp(w_min, 1)
    return w * reference + (1 - w) * x0_eps


def sample_ddim(
    denoise: Denoiser,
    x_start: torch.Tensor,
    cond: Any,
    alphas_cumprod: torch.Tensor,
    nfe: int = 10,
    *,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Deterministic DDIM from pure noise to x0.

    Each step: x0 = denoise(x_t, t); ε' = (x_t/√ᾱ_t − x0)/√(1/ᾱ_t − 1);
    x_prev = √ᾱ_prev·x0 + √(1 − ᾱ_prev)·ε' with ᾱ_prev = 1 after the last step (so it returns that x0).

    Args:
        denoise: ``denoise(x_t, t, cond) -> x0_hat`` with integer timesteps.
        x_start: (B, C, H, W) starting noise (e.g. ``models.sampling.position_noise``).
        cond: passed through to ``denoise``.
        alphas_cumprod: (T,) ᾱ of the training schedule (float64 preferred).
        nfe: number of steps (official: 10).
        callback: called after each step with (done, nfe).

    Returns:
        (B, C, H, W) the sample.
    """
    ac = alphas_cumprod.to(torch.float64)
    steps = ddim_timesteps(nfe, ac.shape[0])
    x = x_start
    batch = x.shape[0]
    for i, step in enumerate(steps):
        t = torch.full((batch,), step, dtype=torch.long, device=x.device)
        x0 = denoise(x, t, cond)
        eps = (_at(torch.sqrt(1.0 / ac), t, x) * x - x0) / _at(torch.sqrt(1.0 / ac - 1), t, x)
        prev = ac[steps[i + 1]] if i + 1 < len(steps) else torch.tensor(1.0, dtype=torch.float64)
        x = x0 * float(torch.sqrt(prev)) + float(torch.sqrt(1 - prev)) * eps
        if callback is not None:
            callback(i + 1, len(steps))
    return x
