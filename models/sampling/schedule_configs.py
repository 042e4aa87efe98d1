"""Each method's schedule as a frozen dataclass whose constructor arguments are what its model card stores.

In the diffusers manner: ``dataclasses.asdict(schedule)`` is the card's ``schedule`` JSON and
``schedule_from_dict`` reads it back. Cards written before these types carry extra descriptive keys
(``prediction``, ``sampler``, ``data_range``, ...) that no code reads; they are ignored. A key that is absent
takes the method's official value, except DiffCR's thresholding, which such cards only had when it was on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from models.sampling.bridge_schedules import BRIDGE_TIMESTEPS, bridge_schedule
from models.sampling.noise_schedules import alphas_cumprod, make_betas

W_MIN = 0.3  # η, DE's limiting factor of the fusion weight (official: w.clamp(0.3, 1))


@dataclass(frozen=True)
class BridgeSchedule:
    """DB-CR's bridge: a_t by ``kind`` (``linear`` or ``i2sb``) over ``timesteps`` steps."""

    kind: str = "linear"
    timesteps: int = BRIDGE_TIMESTEPS

    def alphas(self) -> Tensor:
        """a_t for t = 0..T, shape (T + 1,), float64."""
        return bridge_schedule(self.kind, self.timesteps)


@dataclass(frozen=True)
class Thresholding:
    """Dynamic thresholding of every x0 prediction: the quantile ``ratio`` of |x0|, at least ``max_val``."""

    ratio: float = 0.995
    max_val: float = 1.0


@dataclass(frozen=True)
class DiffCRSchedule:
    """DiffCR's VP noise schedule and how its sampler feeds the network.

    Attributes:
        name: ``sigmoid`` (the paper's), ``linear`` or ``cosine``.
        n_timestep: T of the training schedule.
        time_input: ``gamma`` (ᾱ, as in training) or ``official`` (the authors' test script's (t − 1/N)·1000).
        thresholding: dynamic thresholding of x0, or None for none.
    """

    name: str = "sigmoid"
    n_timestep: int = 1000
    time_input: str = "gamma"
    thresholding: Thresholding | None = None

    def betas(self) -> Tensor:
        """(T,) float64 betas."""
        return make_betas(self.name, self.n_timestep)

    def alphas_cumprod(self) -> Tensor:
        """(T,) float64 ᾱ (γ, the noise level DiffCR embeds in training)."""
        return alphas_cumprod(self.betas())


@dataclass(frozen=True)
class DESchedule:
    """DE's VP noise schedule and the lower clamp of its fusion weight.

    Attributes:
        name: ``adm-linear`` (guided-diffusion's linear schedule, the paper's).
        n_timestep: T of the training schedule.
        w_min: η, the lower clamp of the fusion weight w.
    """

    name: str = "adm-linear"
    n_timestep: int = 1000
    w_min: float = W_MIN

    def alphas_cumprod(self) -> Tensor:
        """(T,) float64 ᾱ."""
        return alphas_cumprod(make_betas(self.name, self.n_timestep))


Schedule = BridgeSchedule | DiffCRSchedule | DESchedule
# algorithm -> the type of its card's schedule (other algorithms, e.g. DE's reference network, have none)
SCHEDULE_TYPES: dict[str, type[Schedule]] = {"dbcr": BridgeSchedule, "diffcr": DiffCRSchedule, "de": DESchedule}


def schedule_from_dict(algorithm: str, values: Mapping[str, Any] | None) -> Schedule | None:
    """Read a card's ``schedule`` JSON into its algorithm's type (None for an algorithm without a schedule).

    Raises:
        ValueError: if a value has the wrong type.
    """
    if algorithm not in SCHEDULE_TYPES:
        return None
    values = values or {}
    try:
        if algorithm == "dbcr":
            return BridgeSchedule(str(values.get("kind", "linear")), int(values.get("timesteps", BRIDGE_TIMESTEPS)))
        if algorithm == "diffcr":
            raw = values.get("thresholding")
            thresholding = None if not raw else Thresholding(float(raw["ratio"]), float(raw["max_val"]))
            return DiffCRSchedule(
                str(values.get("name", "sigmoid")), int(values.get("n_timestep", 1000)),
                str(values.get("time_input", "gamma")), thresholding,
            )  # fmt: skip
        return DESchedule(
            str(values.get("name", "adm-linear")), int(values.get("n_timestep", 1000)),
            float(values.get("w_min", W_MIN)),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"the {algorithm} card's schedule {dict(values)} is not readable: {error}") from error
