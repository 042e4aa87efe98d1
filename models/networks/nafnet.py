"""NAFNet building blocks with an optional time embedding (FiLM), shared by the DB-CR branches.

NAFNet (Chen et al., ECCV 2022) has no nonlinearity besides a multiplicative gate; the time embedding follows
IR-SDE/Refusion: each block scales and shifts its two normalised inputs by amounts predicted from the timestep.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """Layer norm over the channel axis of a (B, C, H, W) tensor, per pixel."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Normalise (B, C, H, W) over C."""
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: NAFNet's only nonlinearity."""

    def forward(self, x: Tensor) -> Tensor:
        """(B, 2C, ...) -> (B, C, ...)."""
        a, b = x.chunk(2, dim=1)
        return a * b


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sinusoidal embedding of a (B,) timestep in [0, T]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        """(B,) -> (B, dim)."""
        half = self.dim // 2
        scale = math.log(10000) / max(half - 1, 1)
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -scale)
        angles = t.float()[:, None] * freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TimeEmbedding(nn.Module):
    """Timestep -> a vector of ``4 * width`` features shared by every block."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.out_dim = 4 * width
        self.net = nn.Sequential(
            SinusoidalEmbedding(width), nn.Linear(width, 8 * width), SimpleGate(), nn.Linear(4 * width, 4 * width)
        )

    def forward(self, t: Tensor) -> Tensor:
        """(B,) -> (B, 4 * width)."""
        return self.net(t)


class NAFBlock(nn.Module):
    """A NAFNet block whose two normalised inputs are modulated by the time embedding.

    Args:
        channels: feature channels C.
        time_dim: size of the time embedding, or 0 for a block without time.
    """

    def __init__(self, channels: int, time_dim: int = 0) -> None:
        super().__init__()
        c, dw = channels, 2 * channels
        self.time_mlp = nn.Sequential(SimpleGate(), nn.Linear(time_dim // 2, 4 * c)) if time_dim else None
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))
        self.conv3 = nn.Conv2d(c, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, dw, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        # Zero-initialised residual scales make every block start as the identity (NAFNet).
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: Tensor, temb: Tensor | None = None) -> Tensor:
        """(B, C, H, W), (B, time_dim) -> (B, C, H, W)."""
        x = self.norm1(inp)
        if self.time_mlp is not None and temb is not None:
            shift1, scale1, shift2, scale2 = self.time_mlp(temb)[:, :, None, None].chunk(4, dim=1)
        else:
            shift1 = scale1 = shift2 = scale2 = None
        if scale1 is not None:
            x = x * (1 + scale1) + shift1
        x = self.gate(self.conv2(self.conv1(x)))
        x = x * self.sca(x)
        y = inp + self.beta * self.conv3(x)
        x = self.norm2(y)
        if scale2 is not None:
            x = x * (1 + scale2) + shift2
        x = self.conv5(self.gate(self.conv4(x)))
        return y + self.gamma * x


class BlockStack(nn.Module):
    """A sequence of NAFBlocks that all see the same time embedding."""

    def __init__(self, channels: int, count: int, time_dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(NAFBlock(channels, time_dim) for _ in range(count))

    def forward(self, x: Tensor, temb: Tensor | None) -> Tensor:
        """Apply every block in turn."""
        for block in self.blocks:
            x = block(x, temb)
        return x
