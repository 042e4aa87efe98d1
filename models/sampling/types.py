"""The two types every sampler shares: the denoiser it calls and the callback it reports to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

Denoiser = Callable[[Tensor, Tensor, Any], Tensor]
"""``denoise(x_t, t, cond) -> x0_hat``: x_t (B, C, H, W), t (B,) in the sampler's time, cond what the adapter needs.

The adapters in ``models.denoisers`` turn each network into one; a test double works as well.
"""

StepCallback = Callable[[int, int], None]
"""``callback(done, total)`` after every network evaluation: progress, and an exception raised here cancels."""
