"""Bridge schedules: a_t, the weight of the cloudy image in the bridge state x_t = (1 - a_t) x0 + a_t y.

The DB-CR paper's own curve (its Fig. 4) could not be recovered; ``linear`` is a_t = t / T and ``i2sb`` is the
symmetric schedule of I2SB (Liu et al. 2023), which is nearly linear with a mild S-shape.
"""

from __future__ import annotations

import torch
from torch import Tensor

BRIDGE_TIMESTEPS = 1000


def linear_bridge(timesteps: int = BRIDGE_TIMESTEPS) -> Tensor:
    """a_t = t / T for t = 0..T, shape (T + 1,)."""
    return torch.linspace(0.0, 1.0, timesteps + 1, dtype=torch.float64)


def i2sb_bridge(timesteps: int = BRIDGE_TIMESTEPS, beta_max: float = 0.3) -> Tensor:
    """I2SB's a_t = sigma_fwd^2 / (sigma_fwd^2 + sigma_bwd^2) over a symmetric beta schedule, shape (T + 1,)."""
    half = timesteps // 2
    betas = torch.linspace(1e-4**0.5, (beta_max / timesteps) ** 0.5, timesteps, dtype=torch.float64) ** 2
    betas = torch.cat([betas[:half], betas[:half].flip(0)])
    forward = torch.cat([torch.zeros(1, dtype=torch.float64), betas.cumsum(0)])
    backward = forward[-1] - forward
    return forward / (forward + backward)


BRIDGE_SCHEDULES = {"linear": linear_bridge, "i2sb": i2sb_bridge}


def bridge_schedule(name: str, timesteps: int = BRIDGE_TIMESTEPS) -> Tensor:
    """Look up a bridge schedule by the name stored in a model card."""
    if name not in BRIDGE_SCHEDULES:
        raise ValueError(f"unknown bridge schedule {name!r}; known: {', '.join(BRIDGE_SCHEDULES)}")
    return BRIDGE_SCHEDULES[name](timesteps)


def bridge_state(x0: Tensor, y: Tensor, a_t: Tensor) -> Tensor:
    """x_t = (1 - a_t) x0 + a_t y, with a_t of shape (B,) broadcast over (B, C, H, W)."""
    a = a_t.to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return (1 - a) * x0 + a * y
