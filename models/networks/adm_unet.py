"""The ADM (guided-diffusion) U-Net that DE's noise predictor and weight-allocation net are made of.

Parameter names follow openai/guided-diffusion ``unet.py`` as DE ships it (``time_embed``, ``input_blocks``,
``middle_block``, ``output_blocks``, ``out``; ``in_layers``/``emb_layers``/``out_layers``/``skip_connection``;
``norm``/``qkv``/``proj_out``; ``op``/``conv``), so official checkpoints load unchanged. Only the paths DE uses
are built: convolutional resampling, no class labels, no checkpointing, float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """ADM's sinusoidal embedding [cos, sin] of (B,) timesteps (integers 0…T−1, or floats)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps.reshape(-1, 1).float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


def normalization(channels: int) -> nn.GroupNorm:
    """ADM's GroupNorm32: 32 groups (computed in float32, which is our only dtype)."""
    return nn.GroupNorm(32, channels)


class ResBlock(nn.Module):
    """Residual block with time conditioning: additive, or FiLM-style scale-shift on the second norm."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, use_scale_shift_norm: bool) -> None:
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            normalization(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels)
        )
        # Index 2 is the (p = 0) dropout of the official block; keeping it keeps ``out_layers.3`` as the conv.
        self.out_layers = nn.Sequential(
            normalization(out_channels), nn.SiLU(), nn.Identity(), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        self.skip_connection: nn.Module = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) and time features (B, E) → (B, C_out, H, W)."""
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[3](self.out_layers[1](h))
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over all pixels with ADM's legacy head split (heads before q/k/v)."""

    def __init__(self, channels: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = normalization(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, C, H, W)."""
        b, c, height, width = x.shape
        flat = x.reshape(b, c, height * width)
        qkv = self.qkv(self.norm(flat))
        ch = c // self.num_heads
        q, k, v = qkv.reshape(b * self.num_heads, 3 * ch, height * width).split(ch, dim=1)
        # Fused attention never materialises the (HW)² weights on GPU (4096² per head at 256² tiles); the
        # official code scales q and k by ch**-0.25 each, the same softmax up to float rounding.
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2)[None], k.transpose(1, 2)[None], v.transpose(1, 2)[None], scale=1 / math.sqrt(ch)
        )[0]
        a = a.transpose(1, 2).reshape(b, c, height * width)
        return (flat + self.proj_out(a)).reshape(b, c, height, width)


class Downsample(nn.Module):
    """Stride-2 3×3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the resolution."""
        return self.op(x)


class Upsample(nn.Module):
    """Nearest ×2 upsampling followed by a 3×3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Double the resolution."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TimestepSequence(nn.Sequential):
    """``nn.Sequential`` that hands the time features to the residual blocks."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Run the layers in order."""
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class ADMUNet(nn.Module):
    """ADM U-Net body: ``unet(x, timesteps) -> (B, out_channels, H, W)``; H and W multiples of 2**(levels−1)."""

    def __init__(
        self,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int,
        attention_ds: Sequence[int],
        channel_mult: Sequence[int],
        num_heads: int,
        use_scale_shift_norm: bool,
    ) -> None:
        super().__init__()
        self.model_channels = model_channels
        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        def res(ch_in: int, ch_out: int) -> ResBlock:
            return ResBlock(ch_in, emb_dim, ch_out, use_scale_shift_norm)

        ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList([TimestepSequence(nn.Conv2d(in_channels, ch, 3, padding=1))])
        skip_chans, ds = [ch], 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res(ch, int(mult * model_channels))]
                ch = int(mult * model_channels)
                if ds in attention_ds:
                    layers.append(AttentionBlock(ch, num_heads))
                self.input_blocks.append(TimestepSequence(*layers))
                skip_chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(TimestepSequence(Downsample(ch)))
                skip_chans.append(ch)
                ds *= 2
        self.middle_block = TimestepSequence(res(ch, ch), AttentionBlock(ch, num_heads), res(ch, ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), int(model_channels * mult))]
                ch = int(model_channels * mult)
                if ds in attention_ds:
                    layers.append(AttentionBlock(ch, num_heads))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(TimestepSequence(*layers))
        self.out = nn.Sequential(normalization(ch), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))

    def unet(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Run the U-Net on (B, in_channels, H, W) at (B,) timesteps."""
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        skips = []
        h = x
        for module in self.input_blocks:
            h = module(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = module(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)
