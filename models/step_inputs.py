"""Example inputs of one denoiser step per algorithm: for ONNX export and for counting multiply-accumulates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

StepExample = tuple[tuple[torch.Tensor, ...], list[str], list[str]]
"""Example inputs of one step, the graph's input names and its output names."""


def _diffcr_step(config: Mapping[str, Any], batch: int, tile: int) -> StepExample:
    prior = int(config.get("prior", False))  # each date's cloud mask, then the prior (models.networks.diffcr)
    cond_channels = config["dates"] * (config["bands"] + config["sar_bands"] + prior) + config["bands"] * prior
    inputs = (
        torch.randn(batch, config["bands"], tile, tile),
        torch.rand(batch),
        torch.randn(batch, cond_channels, tile, tile),
    )
    return inputs, ["x_t", "gamma", "cond"], ["x0"]


def _de_step(config: Mapping[str, Any], batch: int, tile: int) -> StepExample:
    bands = config["bands"]
    inputs = (
        torch.randn(batch, bands, tile, tile),
        torch.randint(0, 1000, (batch,)).float(),  # float in the graph: one input type for every runtime
        torch.randn(batch, bands, tile, tile),
        torch.randn(batch, bands, tile, tile),
    )
    return inputs, ["x_t", "t", "cloudy", "reference"], ["eps", "w"]


def _dbcr_step(config: Mapping[str, Any], batch: int, tile: int) -> StepExample:
    inputs = (
        torch.rand(batch, config["optical_channels"], tile, tile),
        torch.full((batch,), 1000.0),
        torch.rand(batch, config["sar_channels"] + config.get("cloudy_channels", 0), tile, tile),
    )
    return inputs, ["x_t", "t", "sar"], ["x0"]


def _de_reference_step(config: Mapping[str, Any], batch: int, tile: int) -> StepExample:
    return (torch.rand(batch, config["bands"], tile, tile),), ["cloudy"], ["restored"]


def _rgb_cloud_step(config: Mapping[str, Any], batch: int, tile: int) -> StepExample:
    return (torch.rand(batch, 3, tile, tile),), ["rgb"], ["cloud_logits"]


STEP_INPUTS: dict[str, Callable[[Mapping[str, Any], int, int], StepExample]] = {
    "dbcr": _dbcr_step,
    "diffcr": _diffcr_step,
    "de": _de_step,
    "de-reference": _de_reference_step,
    "rgb-cloud": _rgb_cloud_step,
}
