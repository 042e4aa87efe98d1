"""DiffCR's sampler: deterministic multistep DPM-Solver++ over a data (x0) predictor on a discrete VP schedule.

This reproduces what the official DiffCR test run does (``core/dpm_solver_pytorch.py`` with
``NoiseScheduleVP('discrete', betas)``, ``algorithm_type='dpmsolver++'``, ``order=2``, ``method='multistep'``,
``skip_type='time_uniform'``, ``lower_order_final=True``, ``denoise_to_zero=True`` and dynamic thresholding at
ratio 0.995): NFE = steps + 1, the official 20 steps are ``nfe=21`` (:func:`dpm_solver_steps`).

Time is DPM-Solver's continuous t ∈ [1/N, 1]: the discrete step n sits at t = (n + 1)/N. The sampler hands that
t to ``denoise``; turning it into what a network embeds (γ = ᾱ(t) or the official (t − 1/N)·1000) is the
network adapter's job (``models.denoisers.diffcr_denoiser``), not the sampler's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from models.sampling.types import Denoiser, StepCallback


@dataclass(frozen=True)
class DiscreteVPSchedule:
    """A discrete-time VP schedule seen in continuous time, as DPM-Solver's ``NoiseScheduleVP('discrete')``.

    Attributes:
        log_alpha_array: (N,) float32 log √ᾱ_n after the log-SNR clip.
        t_array: (N,) float32 continuous times (n + 1)/N.
    """

    log_alpha_array: torch.Tensor
    t_array: torch.Tensor

    @classmethod
    def from_betas(cls, betas: torch.Tensor, clipped_lambda: float = -5.1) -> DiscreteVPSchedule:
        """Build the schedule as the official code does, dropping the tail steps whose half log-SNR is below -5.1.

        The clip shortens N for schedules that reach ᾱ ≈ 0 (DiffCR's sigmoid does), which in turn changes the
        official model time input (t − 1/N)·1000; keeping it identical keeps imported checkpoints identical.

        Args:
            betas: (T,) betas, ideally float64.
            clipped_lambda: the half log-SNR below which tail steps are dropped.

        Returns:
            The schedule.
        """
        log_alphas = 0.5 * torch.log(1 - betas).cumsum(dim=0)
        log_sigmas = 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alphas))
        lambdas = log_alphas - log_sigmas
        drop = int(torch.searchsorted(torch.flip(lambdas, [0]), torch.tensor(clipped_lambda, dtype=lambdas.dtype)))
        if drop > 0:
            log_alphas = log_alphas[:-drop]
        total = log_alphas.shape[0]
        t_array = torch.linspace(0.0, 1.0, total + 1)[1:].to(torch.float32)
        return cls(log_alpha_array=log_alphas.to(torch.float32), t_array=t_array)

    @property
    def total_n(self) -> int:
        """N, the number of discrete steps kept."""
        return int(self.t_array.shape[0])

    def log_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Log α(t) = log √ᾱ(t), piecewise linear in t between the discrete steps (extrapolated at the ends)."""
        xp = self.t_array.to(t.device)
        yp = self.log_alpha_array.to(t.device)
        k = torch.clamp(torch.searchsorted(xp, t.contiguous(), right=True) - 1, 0, xp.shape[0] - 2)
        x0, x1, y0, y1 = xp[k], xp[k + 1], yp[k], yp[k + 1]
        return y0 + (t - x0) * (y1 - y0) / (x1 - x0)

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """α(t) = √ᾱ(t), the signal scale."""
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """σ(t) = √(1 − ᾱ(t)), the noise scale."""
        return torch.sqrt(1.0 - torch.exp(2.0 * self.log_alpha(t)))

    def lambda_(self, t: torch.Tensor) -> torch.Tensor:
        """λ(t) = log α(t) − log σ(t), the half log-SNR."""
        log_alpha = self.log_alpha(t)
        return log_alpha - 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alpha))

    def alphas_cumprod(self, t: torch.Tensor) -> torch.Tensor:
        """γ = ᾱ(t), the noise level DiffCR embeds during training."""
        return torch.exp(2.0 * self.log_alpha(t))

    def official_time_input(self, t: torch.Tensor) -> torch.Tensor:
        """(t − 1/N)·1000: the time input the official DPM-Solver wrapper passes to a discrete-time network."""
        return (t - 1.0 / self.total_n) * 1000.0


def _row_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row quantile with linear interpolation, like ``torch.quantile`` but without its 16 M-element limit."""
    n = values.shape[1]
    position = q * (n - 1)
    low = int(position)
    high = min(low + 1, n - 1)
    v_low = values.kthvalue(low + 1, dim=1).values
    v_high = values.kthvalue(high + 1, dim=1).values
    return v_low + (position - low) * (v_high - v_low)


def dynamic_thresholding(x0: torch.Tensor, ratio: float = 0.995, max_val: float = 1.0) -> torch.Tensor:
    """Imagen's dynamic thresholding, as the official sampler applies it to every x0 prediction.

    Args:
        x0: (B, C, H, W) predictions in the [-1, 1] data range.
        ratio: the quantile of |x0| (per sample) used as the threshold s.
        max_val: s is at least this, so in-range predictions pass unchanged.

    Returns:
        clamp(x0, −s, s)/s.
    """
    s = _row_quantile(x0.abs().reshape(x0.shape[0], -1), ratio)
    s = torch.clamp(s, min=max_val).reshape(-1, *([1] * (x0.dim() - 1)))
    return torch.clamp(x0, -s, s) / s


def _first_order(
    schedule: DiscreteVPSchedule, x: torch.Tensor, s: torch.Tensor, t: torch.Tensor, x0_s: torch.Tensor
) -> torch.Tensor:
    """DPM-Solver++-1 (= DDIM) from time s to t."""
    h = schedule.lambda_(t) - schedule.lambda_(s)
    return (schedule.sigma(t) / schedule.sigma(s)) * x - (schedule.alpha(t) * torch.expm1(-h)) * x0_s


def _second_order(
    schedule: DiscreteVPSchedule,
    x: torch.Tensor,
    x0_prev: tuple[torch.Tensor, torch.Tensor],
    t_prev: tuple[torch.Tensor, torch.Tensor],
    t: torch.Tensor,
) -> torch.Tensor:
    """Multistep DPM-Solver++-2 ('dpmsolver' type) from t_prev[1] to t, reusing the x0 at t_prev[0]."""
    lambda_prev_1, lambda_prev_0 = schedule.lambda_(t_prev[0]), schedule.lambda_(t_prev[1])
    h = schedule.lambda_(t) - lambda_prev_0
    r0 = (lambda_prev_0 - lambda_prev_1) / h
    d1 = (1.0 / r0) * (x0_prev[1] - x0_prev[0])
    phi_1 = torch.expm1(-h)
    alpha_t = schedule.alpha(t)
    return (
        (schedule.sigma(t) / schedule.sigma(t_prev[1])) * x
        - (alpha_t * phi_1) * x0_prev[1]
        - 0.5 * (alpha_t * phi_1) * d1
    )


@dataclass(frozen=True)
class DPMSolverSteps:
    """The times the solver visits on its schedule, and whether it ends with one more x0 prediction.

    Attributes:
        schedule: the discrete VP schedule.
        times: (steps + 1,) continuous times from 1 down to 1/N, uniform in t (``skip_type='time_uniform'``).
        denoise_to_zero: finish with one more x0 prediction at t = 1/N (official: True).
    """

    schedule: DiscreteVPSchedule
    times: torch.Tensor
    denoise_to_zero: bool = True

    @property
    def nfe(self) -> int:
        """Network evaluations of a run on these steps."""
        return len(self.times) if self.denoise_to_zero else len(self.times) - 1


def dpm_solver_steps(nfe: int, schedule: DiscreteVPSchedule, denoise_to_zero: bool = True) -> DPMSolverSteps:
    """The steps of an ``nfe``-evaluation run: nfe − 1 solver steps with ``denoise_to_zero`` (official 21 → 20).

    Raises:
        ValueError: if nfe leaves no solver step.
    """
    steps = nfe - 1 if denoise_to_zero else nfe
    if steps < 1:
        raise ValueError(f"nfe={nfe} leaves no solver step; use at least {2 if denoise_to_zero else 1}")
    times = torch.linspace(1.0, 1.0 / schedule.total_n, steps + 1)
    return DPMSolverSteps(schedule, times, denoise_to_zero)


def sample_dpm_solver(
    denoise: Denoiser,
    x: torch.Tensor,
    steps: DPMSolverSteps,
    cond: Any,
    callback: StepCallback | None = None,
    *,
    order: int = 2,
    lower_order_final: bool = True,
    correct_x0: Callable[[torch.Tensor], torch.Tensor] | None = dynamic_thresholding,
) -> torch.Tensor:
    """Solve the diffusion ODE from t = 1 to t = 1/N with multistep DPM-Solver++ (time-uniform steps).

    Args:
        denoise: ``denoise(x_t, t, cond) -> x0_hat``.
        x: (B, C, H, W) starting noise at t = 1 (e.g. ``models.sampling.position_noise``).
        steps: from :func:`dpm_solver_steps`.
        cond: passed through to ``denoise``.
        callback: called as ``callback(done, total)`` after each network evaluation.
        order: solver order (1 or 2); lowered to the number of steps when that is smaller.
        lower_order_final: use first order for the last step when steps < 10 (official: True).
        correct_x0: applied to every x0 prediction (official: dynamic thresholding); None for none.

    Returns:
        (B, C, H, W) the sample, in the denoiser's data range.

    Raises:
        ValueError: if the order is unsupported.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    schedule = steps.schedule
    solver_steps = len(steps.times) - 1
    order = min(order, solver_steps)
    total = steps.nfe
    batch = x.shape[0]
    device = x.device
    times = steps.times.to(device)
    done = 0

    def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        nonlocal done
        x0 = denoise(x, t.expand(batch), cond)
        if correct_x0 is not None:
            x0 = correct_x0(x0)
        done += 1
        if callback is not None:
            callback(done, total)
        return x0

    t_prev = [times[0:1]]
    x0_prev = [predict(x, t_prev[0])]
    for step in range(1, solver_steps + 1):
        t = times[step : step + 1]
        step_order = min(order, step)  # warm-up: the first step has no history
        if lower_order_final and solver_steps < 10:
            step_order = min(step_order, solver_steps + 1 - step)
        if step_order == 1:
            x = _first_order(schedule, x, t_prev[-1], t, x0_prev[-1])
        else:
            x = _second_order(schedule, x, (x0_prev[-2], x0_prev[-1]), (t_prev[-2], t_prev[-1]), t)
        t_prev = [*t_prev[-(order - 1) :], t] if order > 1 else [t]
        if step < solver_steps:  # the last state needs no x0 unless we denoise to zero
            x0_prev = [*x0_prev[-(order - 1) :], predict(x, t)] if order > 1 else [predict(x, t)]
    if steps.denoise_to_zero:
        x = predict(x, torch.full((1,), 1.0 / schedule.total_n, device=device))
    return x
