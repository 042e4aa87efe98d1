"""DB-CR's two-branch backbone: an optical NAFNet U-Net and a SAR NAFNet encoder fused by SFBlocks.

Hu et al., "Multimodal Diffusion Bridge with Attention-Based SAR Fusion for Satellite Image Cloud Removal",
IEEE TGRS 2025 (arXiv 2504.03607). The network predicts the clean image x0 from the bridge state x_t, the
timestep t and the SAR image; it knows nothing of the sampler, of tiles or of files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.networks.nafnet import BlockStack, TimeEmbedding
from models.networks.sfblock import SFBlock


@dataclass(frozen=True)
class DBCRConfig:
    """Constructor arguments of :class:`DBCRNet`; stored in the model card.

    Attributes:
        optical_channels: Sentinel-2 bands in and out (13 for L1C).
        sar_channels: Sentinel-1 bands (VV, VH).
        widths: feature channels of the encoder levels; the middle runs at twice the last.
        enc_blocks: NAFBlocks per encoder level, in both branches.
        dec_blocks: NAFBlocks per decoder level of the optical branch (deepest level first).
        middle_blocks: NAFBlocks at the bottleneck of the optical branch.
        heads: attention heads of the SFBlock at each level.
        cloudy_channels: optical condition bands the SAR branch takes after the radar's: a model whose bridge
            starts at a filled image (card ``bridge_start = "local_fill"``) sees there the cloudy image and its
            cloud mask (optical_channels + 1), so thin cloud it can see through is not lost with the fill.
        tile_normalise: work on each tile's bands standardised by the bridge state's own mean and spread (and
            the cloudy image of the condition by the same), and undo it on the way out. A network trained on a
            few places then corrects a bright desert and a dark forest alike, instead of pulling both towards the
            brightness of the places it saw.
    """

    optical_channels: int = 13
    sar_channels: int = 2
    widths: tuple[int, ...] = (22, 44, 88, 176)
    enc_blocks: tuple[int, ...] = (1, 1, 1, 28)
    dec_blocks: tuple[int, ...] = (1, 1, 1, 1)
    middle_blocks: int = 1
    heads: tuple[int, ...] = (1, 1, 2, 4)
    cloudy_channels: int = 0
    tile_normalise: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DBCRConfig:
        """Rebuild a config from its JSON form (lists become tuples)."""
        fields: dict[str, Any] = {key: tuple(v) if isinstance(v, list) else v for key, v in values.items()}
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in a model card."""
        return dataclasses.asdict(self)


# Added to a tile's spread (reflectance) so that a flat tile (water, a uniform field) is not blown up.
TILE_SPREAD_FLOOR = 0.01

PAPER = DBCRConfig()
LITE = DBCRConfig(widths=(16, 32, 64, 128), enc_blocks=(1, 1, 1, 2), dec_blocks=(1, 1, 1, 1), heads=(1, 1, 2, 4))


class DBCRNet(nn.Module):
    """x0_hat = net(x_t, t, sar).

    Shapes: x_t (B, optical_channels, H, W) reflectance, t (B,) timesteps in [0, T], sar
    (B, sar_channels + cloudy_channels, H, W) in [0, 1] (the radar, then any optical condition). Any H, W: the
    input is padded to a multiple of 2**levels and cropped back.
    """

    def __init__(self, config: DBCRConfig = PAPER) -> None:
        super().__init__()
        self.config = config
        widths, levels = config.widths, len(config.widths)
        if not (len(config.enc_blocks) == len(config.dec_blocks) == len(config.heads) == levels):
            raise ValueError("widths, enc_blocks, dec_blocks and heads need one entry per level")
        self.time = TimeEmbedding(widths[0])
        tdim = self.time.out_dim
        self.optical_intro = nn.Conv2d(config.optical_channels, widths[0], 3, padding=1)
        self.sar_intro = nn.Conv2d(config.sar_channels + config.cloudy_channels, widths[0], 3, padding=1)
        self.optical_encoders = nn.ModuleList(BlockStack(w, n, tdim) for w, n in zip(widths, config.enc_blocks))
        self.sar_encoders = nn.ModuleList(BlockStack(w, n, tdim) for w, n in zip(widths, config.enc_blocks))
        self.fusions = nn.ModuleList(SFBlock(w, h) for w, h in zip(widths, config.heads))
        self.optical_downs = nn.ModuleList(nn.Conv2d(w, 2 * w, 2, stride=2) for w in widths)
        # The SAR branch only feeds the fusions, so it needs no down-sampling after the last level.
        self.sar_downs = nn.ModuleList(nn.Conv2d(w, 2 * w, 2, stride=2) for w in widths[:-1])
        self.middle = BlockStack(2 * widths[-1], config.middle_blocks, tdim)
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * w, 4 * w, 1, bias=False), nn.PixelShuffle(2)) for w in reversed(widths)
        )
        self.decoders = nn.ModuleList(BlockStack(w, n, tdim) for w, n in zip(reversed(widths), config.dec_blocks))
        self.ending = nn.Conv2d(widths[0], config.optical_channels, 3, padding=1)
        # With the zero-initialised block scales, a zero ending makes a fresh network the identity: training
        # starts from "return the cloudy image" (already right on clear ground) instead of from noise.
        nn.init.zeros_(self.ending.weight)
        if self.ending.bias is not None:
            nn.init.zeros_(self.ending.bias)
        self.pad_multiple = 2**levels

    def forward(self, x_t: Tensor, t: Tensor, sar: Tensor) -> Tensor:
        """Predict the clean image (B, C, H, W) from the bridge state, the timestep and SAR."""
        if not self.config.tile_normalise:
            return self._predict(x_t, t, sar)
        mean = x_t.mean(dim=(2, 3), keepdim=True)
        spread = x_t.std(dim=(2, 3), keepdim=True) + TILE_SPREAD_FLOOR
        condition = sar
        if self.config.cloudy_channels:  # the radar, the cloudy image (standardised like x_t), then the rest
            radar, start = self.config.sar_channels, self.config.sar_channels + self.config.optical_channels
            condition = torch.cat([sar[:, :radar], (sar[:, radar:start] - mean) / spread, sar[:, start:]], dim=1)
        return self._predict((x_t - mean) / spread, t, condition) * spread + mean

    def _predict(self, x_t: Tensor, t: Tensor, sar: Tensor) -> Tensor:
        height, width = x_t.shape[-2:]
        pad_h, pad_w = -height % self.pad_multiple, -width % self.pad_multiple
        inp = F.pad(x_t, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else x_t
        sar = F.pad(sar, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else sar
        temb = self.time(t)
        x, s = self.optical_intro(inp), self.sar_intro(sar)
        skips = []
        for level, (encoder, sar_encoder, fusion, down) in enumerate(
            zip(self.optical_encoders, self.sar_encoders, self.fusions, self.optical_downs)
        ):
            x, s = encoder(x, temb), sar_encoder(s, temb)
            x = fusion(x, s)
            skips.append(x)
            x = down(x)
            if level < len(self.sar_downs):
                s = self.sar_downs[level](s)
        x = self.middle(x, temb)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = decoder(up(x) + skip, temb)
        # A global residual: the bridge state is already close to x0 wherever the sky is clear.
        out = self.ending(x) + inp
        return out[..., :height, :width]
