"""DiffCR's building blocks: NAFNet blocks with split channel attention, with and without time (the TCF block).

Parameter names follow the official code (``conv1``…``conv5``, ``sca_avg.1``, ``sca_max.1``, ``norm1``,
``norm2``, ``beta``, ``gamma``, ``time_emb.1``) so official state dicts load unchanged. Pooling and layer norm are
written with plain tensor ops (mean/amax), which export to ONNX without custom autograd functions.
"""

from __future__ import annotations

import torch
from torch import nn

from models.networks.nafnet import LayerNorm2d


class GlobalAvgPool(nn.Module):
    """(B, C, H, W) → (B, C, 1, 1) mean; stands where the official code has ``nn.AdaptiveAvgPool2d(1)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Average over the spatial axes."""
        return x.mean(dim=(2, 3), keepdim=True)


class GlobalMaxPool(nn.Module):
    """(B, C, H, W) → (B, C, 1, 1) max; stands where the official code has ``nn.AdaptiveMaxPool2d(1)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maximum over the spatial axes."""
        return x.amax(dim=(2, 3), keepdim=True)


class SimpleGate(nn.Module):
    """NAFNet's gate: split the channels in two halves and multiply them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2C, H, W) → (B, C, H, W)."""
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class CondNAFBlock(nn.Module):
    """NAFNet block with split SCA (half the channels gated by average pooling, half by max pooling), no time."""

    def __init__(self, c: int) -> None:
        super().__init__()
        dw = 2 * c
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca_avg = nn.Sequential(GlobalAvgPool(), nn.Conv2d(dw // 4, dw // 4, 1))
        self.sca_max = nn.Sequential(GlobalMaxPool(), nn.Conv2d(dw // 4, dw // 4, 1))
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def spatial(self, inp: torch.Tensor) -> torch.Tensor:
        """First residual branch: norm, expand, depthwise conv, gate, split SCA, project; y = inp + β·x."""
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x_avg, x_max = x.chunk(2, dim=1)
        x = torch.cat([self.sca_avg(x_avg) * x_avg, self.sca_max(x_max) * x_max], dim=1)
        return inp + self.conv3(x) * self.beta

    def ffn(self, y: torch.Tensor) -> torch.Tensor:
        """Second residual branch: norm, expand, gate, project; out = y + γ·x."""
        return y + self.conv5(self.sg(self.conv4(self.norm2(y)))) * self.gamma

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """(B, c, H, W) → (B, c, H, W)."""
        return self.ffn(self.spatial(inp))


class TimeNAFBlock(CondNAFBlock):
    """DiffCR's TCF block: the block above with time added as a per-channel bias after the first residual."""

    def __init__(self, c: int, time_dim: int = 256) -> None:
        super().__init__(c)
        self.time_emb = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, c))

    def forward(self, inp: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """(B, c, H, W) and time features (B, time_dim) → (B, c, H, W)."""
        y = self.spatial(inp) + self.time_emb(t)[..., None, None]
        return self.ffn(y)


class TimedSequence(nn.ModuleList):
    """A sequence of TCF blocks that all receive the time features (keys ``<i>.`` like ``nn.Sequential``)."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Run the blocks in order."""
        for block in self:
            x = block(x, t)
        return x
