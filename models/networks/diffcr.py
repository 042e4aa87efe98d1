"""DiffCR's denoiser: a NAFNet U-Net over the noisy target with a weight-shared condition encoder (TGRS 2024).

Reimplements the official ``UNet`` of ``models/ours/nafnet_double_encoder_splitcaCond_splitcaUnet.py``
(XavierJiezou/DiffCR @ 6e8c2ae) with the same parameter names, so the authors' checkpoints load after the
importer strips the Palette ``denoise_fn.`` prefix and drops the schedule buffers. Differences, all deliberate:
bands, dates and an optional SAR stack per date come from the config (the official code hard-codes 3 RGB bands
and 3 dates); the output is cropped back to the input size after padding to a multiple of 2**levels.

Data range: images in [-1, 1] (reflectance r → 2r − 1); the network predicts x0 (not noise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.networks.adm_unet import timestep_embedding
from models.networks.diffcr_blocks import CondNAFBlock, TimedSequence, TimeNAFBlock


@dataclass(frozen=True)
class DiffCRConfig:
    """DiffCR network hyper-parameters (the constructor arguments, stored in the model card).

    Attributes:
        bands: optical bands of the target and of each cloudy date.
        dates: cloudy dates used as condition (the official code: 3).
        sar_bands: extra channels appended to each date's condition (2 for Sentinel-1 VV, VH; 0 for none).
        width: channels at full resolution (official: 64).
        enc_blocks: TCF blocks per encoder level; the number of levels is its length.
        middle_blocks: TCF blocks at the bottleneck.
        dec_blocks: TCF blocks per decoder level (same length as ``enc_blocks``).
        emb_dim: sinusoidal embedding size of the noise level (official: 64).
        time_dim: time-feature size after the MLP (official: 256).
        prior: the network refines a prior x0 (a fill of the clouds from the other dates): each date's condition
            carries its cloud mask (1 = cloud) after its bands, the prior (bands channels, [-1, 1]) follows the
            dates in ``cond`` and enters beside x_t, and the last layer starts at zero, so that an untrained
            network adds nothing to the prior (``models.denoisers.diffcr_denoiser`` adds it). Not in the paper.
    """

    bands: int = 3
    dates: int = 3
    sar_bands: int = 0
    width: int = 64
    enc_blocks: tuple[int, ...] = (1, 1, 1, 1)
    middle_blocks: int = 1
    dec_blocks: tuple[int, ...] = (1, 1, 1, 1)
    emb_dim: int = 64
    time_dim: int = 256
    prior: bool = False

    @classmethod
    def paper(cls) -> DiffCRConfig:
        """The official configuration (``config/ours_sigmoid.json``): 22.94 M parameters."""
        return cls()

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DiffCRConfig:
        """Rebuild from a card's ``config`` dict (JSON turns tuples into lists)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        return cls(**kwargs)

    @property
    def cond_channels(self) -> int:
        """Channels of one date's condition: optical bands, SAR bands, and its cloud mask with a prior."""
        return self.bands + self.sar_bands + int(self.prior)

    @property
    def cond_total(self) -> int:
        """Channels of the whole ``cond``: every date's condition, then the prior's bands."""
        return self.dates * self.cond_channels + self.bands * int(self.prior)


# A CPU-practical DiffCR for Sentinel-2, optical only as in the paper: 13 L1C bands, up to three dates with their
# cloud masks, refining the temporal fill of the first date's clouds (models/temporal_fill.py); width 16.
LITE = DiffCRConfig(bands=13, dates=3, sar_bands=0, width=16, prior=True)


def gamma_embedding(gammas: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos, sin] of a (B,) noise level, DiffCR's ``gamma_embedding`` (ADM's formula)."""
    return timestep_embedding(gammas, dim, max_period)


class DiffCRNet(nn.Module):
    """DiffCR's conditional x0-predictor.

    Call as ``network(x_t, gamma, cond)``:
        x_t: (B, bands, H, W) noisy target in [-1, 1].
        gamma: (B,) the time input the embedding sees (γ = ᾱ in training; see ``models.denoisers.diffcr_denoiser``).
        cond: (B, ``config.cond_total``, H, W), the cloudy dates stacked on the channel axis, each date's
            optical bands followed by its SAR bands (and its cloud mask), then the prior when ``config.prior``.
    Returns (B, bands, H, W), the predicted cloud-free image x0 (with a prior: the correction to add to it).
    """

    def __init__(self, config: DiffCRConfig) -> None:
        super().__init__()
        if len(config.enc_blocks) != len(config.dec_blocks):
            raise ValueError("enc_blocks and dec_blocks must have the same length (one entry per level)")
        self.config = config
        width, time_dim = config.width, config.time_dim
        # With a prior the target branch sees x_t and the prior side by side.
        self.intro = nn.Conv2d(config.bands * (1 + int(config.prior)), width, 3, padding=1)
        self.cond_intro = nn.Conv2d(config.cond_channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, config.bands, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.cond_encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.cond_downs = nn.ModuleList()
        chan = width
        for num in config.enc_blocks:
            self.encoders.append(TimedSequence([TimeNAFBlock(chan, time_dim) for _ in range(num)]))
            self.cond_encoders.append(nn.Sequential(*[CondNAFBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            self.cond_downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = TimedSequence([TimeNAFBlock(chan, time_dim) for _ in range(config.middle_blocks)])
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for num in config.dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(TimedSequence([TimeNAFBlock(chan, time_dim) for _ in range(num)]))
        self.map = nn.Sequential(nn.Linear(config.emb_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.multiple = 2 ** len(config.enc_blocks)
        if config.prior:  # an untrained network returns the prior exactly (the denoiser adds it)
            for parameter in self.ending.parameters():
                nn.init.zeros_(parameter)

    def forward(self, x_t: torch.Tensor, gamma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predict x0 from the noisy target, its time input and the stacked cloudy dates."""
        cfg = self.config
        batch, _, height, width = x_t.shape
        t = self.map(gamma_embedding(gamma.reshape(-1), cfg.emb_dim))
        pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
        if pad_h or pad_w:  # zero padding at the bottom/right, as the official check_image_size
            x_t = F.pad(x_t, (0, pad_w, 0, pad_h))
            cond = F.pad(cond, (0, pad_w, 0, pad_h))
        if cfg.prior:
            x_t = torch.cat([x_t, cond[:, cfg.dates * cfg.cond_channels :]], dim=1)
            cond = cond[:, : cfg.dates * cfg.cond_channels]
        # The dates share one encoder: fold them into the batch (B·dates, C, H, W).
        c = cond.reshape(batch * cfg.dates, cfg.cond_channels, cond.shape[-2], cond.shape[-1])
        x = self.intro(x_t)
        c = self.cond_intro(c)
        skips = []
        for encoder, down, cond_encoder, cond_down in zip(
            self.encoders, self.downs, self.cond_encoders, self.cond_downs, strict=True
        ):
            x = encoder(x, t)
            c = cond_encoder(c)
            x = x + c.reshape(batch, cfg.dates, *c.shape[1:]).sum(dim=1)
            skips.append(x)
            x = down(x)
            c = cond_down(c)
        x = self.middle_blks(x, t)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1], strict=True):
            x = decoder(up(x) + skip, t)
        return self.ending(x)[..., :height, :width]


def build(config: Mapping[str, Any]) -> DiffCRNet:
    """Rebuild a DiffCR network from a card's config dict (the registry's hook)."""
    return DiffCRNet(DiffCRConfig.from_dict(config))
