"""Fixtures shared by the backend and model tests (also loaded by the QGIS tests, whose Python has no torch)."""

from collections.abc import Callable

import pytest


def _ruinous_step(tuning) -> Callable[..., float]:
    """A fine-tuning step that wrecks the weights: the tuned network restores worse than the original."""

    import torch  # here: the QGIS tests load this file too, in a Python without torch

    def step(clear, cloudy, sar):
        with torch.no_grad():
            for parameter in tuning.network.parameters():
                parameter.add_(torch.randn_like(parameter))
        return 0.0

    return step


@pytest.fixture
def ruinous_step() -> Callable[..., Callable[..., float]]:
    """Put in place of a method's step in ``models.training.scene_finetune.STEPS`` to make adaptation fail."""
    return _ruinous_step
