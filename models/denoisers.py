"""Adapters: each network wrapped once into the samplers' ``denoise(x_t, t, cond) -> x0_hat`` contract.

Networks (``models.networks``) know nothing of samplers and samplers (``models.sampling``) nothing of networks;
what a network needs to be called at sampler time t (its time input, its extra inputs, DE's per-step fusion)
lives here. A network is a torch module or anything called like one (``models.onnx_step.OnnxModule``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from models.sampling.dpm_solver import DiscreteVPSchedule
from models.sampling.schedule_configs import W_MIN
from models.sampling.types import Denoiser

Network = Callable[..., Any]
TIME_INPUTS = ("official", "gamma")


def dbcr_denoiser(network: Network) -> Denoiser:
    """DB-CR's network already has the contract: ``network(x_t, t, sar) -> x0_hat`` with t the bridge timestep."""

    def denoise(x_t: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        return network(x_t, t, cond)

    return denoise


def diffcr_denoiser(
    network: Network, schedule: DiscreteVPSchedule, time_input: str = "gamma", prior: bool = False
) -> Denoiser:
    """Adapt a DiffCR network to DPM-Solver's continuous time t ∈ [1/N, 1].

    The official code trains with the embedding fed γ = ᾱ ∈ (0, 1] but its DPM-Solver wrapper feeds
    (t − 1/N)·1000 ∈ [0, 999] at test time (a mismatch in the authors' code). Both are offered: ``official``
    reproduces the authors' released test script exactly (the importer writes it into the cards of official
    checkpoints); ``gamma`` matches training (the default, and what models trained here use). Which of the two
    produced the paper's numbers is not known.

    Args:
        network: a ``DiffCRNet`` (or an ONNX-backed stand-in with the same call signature).
        schedule: the discrete VP schedule the sampler runs on.
        time_input: ``official`` or ``gamma``.
        prior: the network corrects a prior (``DiffCRConfig.prior``): ``cond`` is the pair (stacked dates with
            their masks, prior in [-1, 1]), the network sees both on the channel axis and x0 = prior + its output.

    Returns:
        The denoiser; ``cond`` is the stacked cloudy dates (B, dates·(bands + sar_bands), H, W), or the pair.

    Raises:
        ValueError: for an unknown ``time_input``.
    """
    if time_input not in TIME_INPUTS:
        raise ValueError(f"time_input must be one of {TIME_INPUTS}, got {time_input!r}")
    to_input = schedule.official_time_input if time_input == "official" else schedule.alphas_cumprod

    def denoise(x_t: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        if not prior:
            return network(x_t, to_input(t), cond)
        dates, x0_prior = cond
        return x0_prior + network(x_t, to_input(t), torch.cat([dates, x0_prior], dim=1))

    return denoise


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
    w_min: float = W_MIN,
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


def de_denoiser(network: Network, alphas_cumprod: torch.Tensor, w_min: float = W_MIN, clip: bool = True) -> Denoiser:
    """Adapt a DE network (ε and w) to an x0 predictor, fusing the reference at every step (:func:`fused_x0`).

    Args:
        network: a ``DENet`` (or an ONNX-backed stand-in with the same call signature).
        alphas_cumprod: (T,) ᾱ of the training schedule (float64 preferred), indexed by the integer timestep.
        w_min: η, the lower clamp of w.
        clip: clip x0_ε to [-1, 1] (official ``clip_denoised=True``).

    Returns:
        The denoiser; ``t`` is a (B,) integer timestep tensor and ``cond`` the pair (cloudy, reference).
    """

    def denoise(x_t: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        cloudy, reference = cond
        eps, w = network(x_t, t, cloudy, reference)
        return fused_x0(x_t, eps, w, reference, alphas_cumprod, t, w_min=w_min, clip=clip)

    return denoise
