"""The SAR Fusion Block (SFBlock) of DB-CR: optical queries attend to SAR keys and values.

The attention is Restormer's "transposed" (channel-wise) attention: the attention map is C×C per head, so its
cost grows linearly with the number of pixels and a 256² tile stays cheap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.networks.nafnet import LayerNorm2d


class CrossChannelAttention(nn.Module):
    """Multi-head channel-wise cross-attention: Q from ``x``, K and V from ``context``."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels cannot be split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.q = nn.Sequential(
            nn.Conv2d(channels, channels, 1), nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        )
        self.kv = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, 1),
            nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=2 * channels),
        )
        self.project_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """(B, C, H, W) optical features, (B, C, H, W) SAR features -> (B, C, H, W)."""
        b, c, h, w = x.shape
        q = self.q(x).reshape(b, self.heads, c // self.heads, h * w)
        k, v = self.kv(context).chunk(2, dim=1)
        k = k.reshape(b, self.heads, c // self.heads, h * w)
        v = v.reshape(b, self.heads, c // self.heads, h * w)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class SFBlock(nn.Module):
    """Fuse SAR features into optical features: cross-attention, then a GELU MLP (hidden 2C), both residual."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm_optical = LayerNorm2d(channels)
        self.norm_sar = LayerNorm2d(channels)
        self.attention = CrossChannelAttention(channels, heads)
        self.norm_mlp = LayerNorm2d(channels)
        self.mlp = nn.Sequential(nn.Conv2d(channels, 2 * channels, 1), nn.GELU(), nn.Conv2d(2 * channels, channels, 1))

    def forward(self, optical: Tensor, sar: Tensor) -> Tensor:
        """(B, C, H, W), (B, C, H, W) -> fused optical features (B, C, H, W)."""
        x = optical + self.attention(self.norm_optical(optical), self.norm_sar(sar))
        return x + self.mlp(self.norm_mlp(x))
