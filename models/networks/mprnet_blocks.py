"""MPRNet's building blocks (channel-attention blocks, U-Net stages, supervised attention, ORSNet).

Parameter names follow swz30/MPRNet (``CA.conv_du.0``, ``body.0``, ``down.1``, ``up.1``, ``csff_enc1``…) so the
DE reference network's official weights load unchanged. Every convolution is bias-free, as in MPRNet.
"""

from __future__ import annotations

import torch
from torch import nn


def conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """'Same'-padded convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)


class CALayer(nn.Module):
    """Squeeze-and-excitation channel attention."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            conv(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            conv(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel by a gate computed from its global mean."""
        return x * self.conv_du(self.avg_pool(x))


class CAB(nn.Module):
    """Channel attention block: conv, activation, conv, channel attention, residual."""

    def __init__(self, channels: int, reduction: int, act: nn.Module) -> None:
        super().__init__()
        self.CA = CALayer(channels, reduction)
        self.body = nn.Sequential(conv(channels, channels, 3), act, conv(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, C, H, W)."""
        return self.CA(self.body(x)) + x


class SAM(nn.Module):
    """Supervised attention module: an intermediate image and features gated by it."""

    def __init__(self, channels: int, bands: int) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels, 1)
        self.conv2 = conv(channels, bands, 1)
        self.conv3 = conv(bands, channels, 1)

    def forward(self, x: torch.Tensor, x_img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (gated features, stage image)."""
        img = self.conv2(x) + x_img
        return self.conv1(x) * torch.sigmoid(self.conv3(img)) + x, img


class DownSample(nn.Module):
    """Bilinear ×0.5, then a 1×1 conv adding channels."""

    def __init__(self, channels: int, extra: int) -> None:
        super().__init__()
        self.down = nn.Sequential(
            nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=False), conv(channels, channels + extra, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the resolution."""
        return self.down(x)


class UpSample(nn.Module):
    """Bilinear ×2, then a 1×1 conv removing channels."""

    def __init__(self, channels: int, extra: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), conv(channels + extra, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Double the resolution."""
        return self.up(x)


class SkipUpSample(UpSample):
    """``UpSample`` plus a skip connection."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Upsample x and add y."""
        return self.up(x) + y


def _cabs(channels: int, reduction: int, act: nn.Module, count: int = 2) -> nn.Sequential:
    return nn.Sequential(*[CAB(channels, reduction, act) for _ in range(count)])


class Encoder(nn.Module):
    """Three-level encoder; with ``csff`` it also takes the previous stage's encoder and decoder features."""

    def __init__(self, f: int, reduction: int, act: nn.Module, su: int, csff: bool) -> None:
        super().__init__()
        self.encoder_level1 = _cabs(f, reduction, act)
        self.encoder_level2 = _cabs(f + su, reduction, act)
        self.encoder_level3 = _cabs(f + 2 * su, reduction, act)
        self.down12 = DownSample(f, su)
        self.down23 = DownSample(f + su, su)
        if csff:
            for i, ch in enumerate((f, f + su, f + 2 * su), start=1):
                setattr(self, f"csff_enc{i}", conv(ch, ch, 1))
                setattr(self, f"csff_dec{i}", conv(ch, ch, 1))

    def _fuse(
        self, level: int, x: torch.Tensor, enc: list[torch.Tensor] | None, dec: list[torch.Tensor] | None
    ) -> torch.Tensor:
        if enc is None or dec is None:
            return x
        return x + getattr(self, f"csff_enc{level}")(enc[level - 1]) + getattr(self, f"csff_dec{level}")(dec[level - 1])

    def forward(
        self, x: torch.Tensor, enc: list[torch.Tensor] | None = None, dec: list[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """Return the three levels' features."""
        enc1 = self._fuse(1, self.encoder_level1(x), enc, dec)
        enc2 = self._fuse(2, self.encoder_level2(self.down12(enc1)), enc, dec)
        enc3 = self._fuse(3, self.encoder_level3(self.down23(enc2)), enc, dec)
        return [enc1, enc2, enc3]


class Decoder(nn.Module):
    """Three-level decoder with attention on the skips."""

    def __init__(self, f: int, reduction: int, act: nn.Module, su: int) -> None:
        super().__init__()
        self.decoder_level1 = _cabs(f, reduction, act)
        self.decoder_level2 = _cabs(f + su, reduction, act)
        self.decoder_level3 = _cabs(f + 2 * su, reduction, act)
        self.skip_attn1 = CAB(f, reduction, act)
        self.skip_attn2 = CAB(f + su, reduction, act)
        self.up21 = SkipUpSample(f, su)
        self.up32 = SkipUpSample(f + su, su)

    def forward(self, outs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Return the three levels' decoded features, finest first."""
        enc1, enc2, enc3 = outs
        dec3 = self.decoder_level3(enc3)
        dec2 = self.decoder_level2(self.up32(dec3, self.skip_attn2(enc2)))
        dec1 = self.decoder_level1(self.up21(dec2, self.skip_attn1(enc1)))
        return [dec1, dec2, dec3]


class ORB(nn.Module):
    """Original-resolution block: ``num_cab`` CABs and a conv, with a residual."""

    def __init__(self, channels: int, reduction: int, act: nn.Module, num_cab: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[CAB(channels, reduction, act) for _ in range(num_cab)], conv(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, C, H, W)."""
        return self.body(x) + x


class ORSNet(nn.Module):
    """Stage 3: three ORBs at full resolution, each fed stage 2's upsampled encoder/decoder features."""

    def __init__(self, f: int, so: int, reduction: int, act: nn.Module, su: int, num_cab: int) -> None:
        super().__init__()
        self.orb1 = ORB(f + so, reduction, act, num_cab)
        self.orb2 = ORB(f + so, reduction, act, num_cab)
        self.orb3 = ORB(f + so, reduction, act, num_cab)
        self.up_enc1 = UpSample(f, su)
        self.up_dec1 = UpSample(f, su)
        self.up_enc2 = nn.Sequential(UpSample(f + su, su), UpSample(f, su))
        self.up_dec2 = nn.Sequential(UpSample(f + su, su), UpSample(f, su))
        self.conv_enc1, self.conv_enc2, self.conv_enc3 = (conv(f, f + so, 1) for _ in range(3))
        self.conv_dec1, self.conv_dec2, self.conv_dec3 = (conv(f, f + so, 1) for _ in range(3))

    def forward(self, x: torch.Tensor, enc: list[torch.Tensor], dec: list[torch.Tensor]) -> torch.Tensor:
        """Refine full-resolution features."""
        x = self.orb1(x) + self.conv_enc1(enc[0]) + self.conv_dec1(dec[0])
        x = self.orb2(x) + self.conv_enc2(self.up_enc1(enc[1])) + self.conv_dec2(self.up_dec1(dec[1]))
        return self.orb3(x) + self.conv_enc3(self.up_enc2(enc[2])) + self.conv_dec3(self.up_dec2(dec[2]))
