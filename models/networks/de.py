"""DE (Diffusion Enhancement, TGRS 2024): ADM noise predictor conditioned on the cloudy image, plus the WA net.

Reimplements the official ``SuperResModel`` → ``UNetModel256`` (littlebeen/DDPM-Enhancement-for-Cloud-Removal
@ 3253b68, ``guided_diffusion/unet.py``) with the same parameter names: the conditional noise predictor (CNP)
sits at the top level and the weight-allocation network (WA, official class ``WeightCaculate``) under ``wc.``.

- CNP input cat(x_t, cloudy) (2C channels), output ε (C channels).
- WA input cat(x_t, cloudy, reference) (3C channels), output per-pixel, per-band w (C channels); zero-initialised
  last conv and no activation (w is clamped to [η, 1] by the fusion in ``models.denoisers``, not by the network).
Data range: [-1, 1] (8-bit images /127.5 − 1 in the official code); timesteps are integers 0…999.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.networks.adm_unet import ADMUNet


@dataclass(frozen=True)
class DEConfig:
    """DE network hyper-parameters (the constructor arguments, stored in the model card).

    Attributes:
        bands: image bands (RICE: 3 RGB; CUHK-CR: 4 = RGB + NIR).
        model_channels: CNP base channels (official: 96).
        num_res_blocks: residual blocks per level, in the CNP and the WA (official: 2).
        channel_mult: CNP channel multiplier per level (official, large_size 64: (1, 1, 2, 2, 3)).
        attention_ds: downsampling rates with self-attention (official: resolutions 16, 8 of 64 → ds 4, 8).
        num_heads: CNP attention heads (official: 4).
        use_scale_shift_norm: FiLM time conditioning in the CNP (official: True).
        wa_channels: WA base channels (official: 64, fixed).
        wa_channel_mult: WA channel multiplier per level (official: (1, 1, 2)).
        wa_num_heads: WA attention heads (official: the class default 1).
        wa_scale_shift_norm: FiLM time conditioning in the WA (official: False).
    """

    bands: int = 3
    model_channels: int = 96
    num_res_blocks: int = 2
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 3)
    attention_ds: tuple[int, ...] = (4, 8)
    num_heads: int = 4
    use_scale_shift_norm: bool = True
    wa_channels: int = 64
    wa_channel_mult: tuple[int, ...] = (1, 1, 2)
    wa_num_heads: int = 1
    wa_scale_shift_norm: bool = False

    @classmethod
    def paper(cls, bands: int = 3) -> DEConfig:
        """The official configuration (``sr_model_and_diffusion_defaults``); 36.80 M parameters at 3 bands."""
        return cls(bands=bands)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DEConfig:
        """Rebuild from a card's ``config`` dict (JSON turns tuples into lists)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        return cls(**kwargs)


# A CPU-practical DE for RGB: 32 base channels (GroupNorm's 32 groups allow no fewer), one residual block per level,
# four levels with attention only at the lowest (1/8) resolution (1.97 M parameters, 61 GMACs per 256² tile against
# the paper's 36.8 M and 259).
LITE = DEConfig(
    model_channels=32, num_res_blocks=1, channel_mult=(1, 1, 2, 2), attention_ds=(8,), wa_channels=32,
    wa_channel_mult=(1, 2),
)  # fmt: skip


class DENet(ADMUNet):
    """DE's CNP with its WA net: ``network(x_t, t, cloudy, reference) -> (eps, w)``.

    Args of the call:
        x_t: (B, C, H, W) noisy image in [-1, 1]; H, W multiples of 2**(len(channel_mult) − 1).
        t: (B,) timesteps 0…999 (integers or floats).
        cloudy: (B, C, h, w) cloudy image in [-1, 1]; resized bilinearly to (H, W) if it differs.
        reference: (B, C, H, W) the frozen reference network's output in [-1, 1].
    Returns (eps, w), both (B, C, H, W).
    """

    def __init__(self, config: DEConfig) -> None:
        c = config.bands
        super().__init__(
            in_channels=2 * c,
            model_channels=config.model_channels,
            out_channels=c,
            num_res_blocks=config.num_res_blocks,
            attention_ds=config.attention_ds,
            channel_mult=config.channel_mult,
            num_heads=config.num_heads,
            use_scale_shift_norm=config.use_scale_shift_norm,
        )
        self.config = config
        self.wc = ADMUNet(
            in_channels=3 * c,
            model_channels=config.wa_channels,
            out_channels=c,
            num_res_blocks=config.num_res_blocks,
            attention_ds=config.attention_ds,
            channel_mult=config.wa_channel_mult,
            num_heads=config.wa_num_heads,
            use_scale_shift_norm=config.wa_scale_shift_norm,
        )
        for conv in (self.out[2], self.wc.out[2]):  # ADM zero-initialises the output conv (WA: w starts at 0)
            if isinstance(conv, nn.Conv2d) and conv.bias is not None:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(
        self, x_t: torch.Tensor, t: torch.Tensor, cloudy: torch.Tensor, reference: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict the noise ε and the fusion weight w."""
        if cloudy.shape[-2:] != x_t.shape[-2:]:  # the official SuperResModel upsamples a low-res condition
            cloudy = F.interpolate(cloudy, x_t.shape[-2:], mode="bilinear")
        h = torch.cat([x_t, cloudy], dim=1)
        eps = self.unet(h, t)
        w = self.wc.unet(torch.cat([h, reference], dim=1), t)
        return eps, w


def build(config: Mapping[str, Any]) -> DENet:
    """Rebuild a DE network from a card's config dict (the registry's hook)."""
    return DENet(DEConfig.from_dict(config))
