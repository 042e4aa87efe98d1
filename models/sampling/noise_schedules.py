"""Variance-preserving (VP) noise schedules used by DiffCR and DE, as the authors' code builds them.

Every function returns the per-step betas as a float64 tensor of length ``n_timestep``; ``alphas_cumprod`` turns
them into the cumulative signal fraction ᾱ_n = Π_{k≤n} (1 − β_k). float64 on purpose: both official code bases
compute schedules in float64 and only cast coefficients to float32 at the end, and we want the same numbers.

- DiffCR (Palette ``make_beta_schedule``): ``sigmoid`` (the paper's), ``linear`` and ``cosine`` (the ablations).
- DE (guided-diffusion ``get_named_beta_schedule('linear', T)``): ``adm_linear_betas``.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("sigmoid", "linear", "cosine", "adm-linear")


def sigmoid_betas(n_timestep: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> torch.Tensor:
    """DiffCR's sigmoid schedule: ᾱ(τ) = (σ(end/τ) − σ((τ·(end − start) + start)/τ)) / (σ(end/τ) − σ(start/τ)).

    Args:
        n_timestep: number of diffusion steps T.
        start: left end of the sigmoid's argument.
        end: right end of the sigmoid's argument.
        tau: temperature.

    Returns:
        (T,) float64 betas, clipped to [0, 0.999] (the last one is 1 before clipping, since ᾱ(1) = 0).
    """
    t = torch.linspace(0, n_timestep, n_timestep + 1, dtype=torch.float64) / n_timestep
    v_start = torch.tensor(start / tau, dtype=torch.float64).sigmoid()
    v_end = torch.tensor(end / tau, dtype=torch.float64).sigmoid()
    alphas_cumprod = (-((t * (end - start) + start) / tau).sigmoid() + v_end) / (v_end - v_start)
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return torch.clip(betas, 0, 0.999)


def linear_betas(n_timestep: int, linear_start: float = 1e-6, linear_end: float = 1e-2) -> torch.Tensor:
    """DiffCR's ``linear`` schedule: betas evenly spaced from ``linear_start`` to ``linear_end``."""
    return torch.linspace(linear_start, linear_end, n_timestep, dtype=torch.float64)


def cosine_betas(n_timestep: int, cosine_s: float = 8e-3) -> torch.Tensor:
    """DiffCR's ``cosine`` schedule (improved DDPM): ᾱ(τ) ∝ cos²((τ + s)/(1 + s)·π/2), betas capped at 0.999."""
    steps = torch.arange(n_timestep + 1, dtype=torch.float64) / n_timestep + cosine_s
    alphas = torch.cos(steps / (1 + cosine_s) * math.pi / 2).pow(2)
    alphas = alphas / alphas[0]
    betas = 1 - alphas[1:] / alphas[:-1]
    return betas.clamp(max=0.999)


def adm_linear_betas(n_timestep: int = 1000) -> torch.Tensor:
    """DE's (guided-diffusion) linear schedule: 1e-4 → 0.02 at T = 1000, rescaled so other T keep the same shape."""
    scale = 1000 / n_timestep
    return torch.linspace(scale * 0.0001, scale * 0.02, n_timestep, dtype=torch.float64)


def make_betas(
    name: str,
    n_timestep: int,
    linear_start: float = 1e-6,
    linear_end: float = 1e-2,
    cosine_s: float = 8e-3,
) -> torch.Tensor:
    """Betas for a schedule named as in the model card (``SCHEDULES``).

    Args:
        name: ``sigmoid``, ``linear``, ``cosine`` or ``adm-linear``.
        n_timestep: number of diffusion steps T.
        linear_start: first beta of ``linear`` (ignored by the others, as in DiffCR's code).
        linear_end: last beta of ``linear``.
        cosine_s: offset s of ``cosine``.

    Returns:
        (T,) float64 betas.

    Raises:
        ValueError: for an unknown name.
    """
    if name == "sigmoid":
        return sigmoid_betas(n_timestep)
    if name == "linear":
        return linear_betas(n_timestep, linear_start, linear_end)
    if name == "cosine":
        return cosine_betas(n_timestep, cosine_s)
    if name == "adm-linear":
        return adm_linear_betas(n_timestep)
    raise ValueError(f"unknown noise schedule {name!r}; expected one of {', '.join(SCHEDULES)}")


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """ᾱ_n = Π_{k≤n} (1 − β_k), in the betas' dtype."""
    return torch.cumprod(1 - betas, dim=0)
