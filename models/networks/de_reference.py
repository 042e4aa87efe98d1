"""DE's frozen reference network ("visual prior"): the MPRNet-style multi-stage restorer DE calls MemoryNet.

DE's ``guided_diffusion/cloudnet/mn/mn.py`` (class ``MPRNet``, in_c = out_c = bands) is not public in any source we
can read; its full parameter layout is (the key listing of the official checkpoints), and it is exactly MPRNet's
(Zamir et al., CVPR 2021, swz30/MPRNet ``Deraining/MPRNet.py``): n_feat 40, scale_unetfeats 20, scale_orsnetfeats
16, 8 CABs per ORB, reduction 4, no biases, one PReLU shared by every block — 3,637,249 parameters for 3 bands. This
module rebuilds that network with the same names so the official weights load; the forward is MPRNet's.

Not verified against official outputs (no fixture exists): the official module returns two values and DE uses the
second; we return MPRNet's final stage-3 restoration, which is what an end-to-end cloud-removal prediction is.
Input: cloudy image in [0, 1] (the official ``previous`` = 8-bit / 255); output in [0, 1] (DE maps it to ×2 − 1).
H and W must be multiples of 8 (stage 1 works on quarter patches that are downsampled twice).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models.networks.mprnet_blocks import CAB, SAM, Decoder, Encoder, ORSNet, conv


@dataclass(frozen=True)
class DEReferenceConfig:
    """Reference network hyper-parameters (the constructor arguments, stored in the model card).

    Attributes:
        bands: input and output bands (RICE 3, CUHK-CR 4).
        n_feat: channels at full resolution (official 40).
        scale_unetfeats: channels added per U-Net level (official 20).
        scale_orsnetfeats: channels added in the original-resolution stage (official 16).
        num_cab: channel-attention blocks per original-resolution block (official 8).
        reduction: channel-attention squeeze ratio (official 4).
    """

    bands: int = 3
    n_feat: int = 40
    scale_unetfeats: int = 20
    scale_orsnetfeats: int = 16
    num_cab: int = 8
    reduction: int = 4

    @classmethod
    def paper(cls, bands: int = 3) -> DEReferenceConfig:
        """The official MemoryNet configuration: 3,637,249 parameters at 3 bands."""
        return cls(bands=bands)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DEReferenceConfig:
        """Rebuild from a card's ``config`` dict."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# A CPU-practical reference network for RGB: MPRNet's layout at 16 channels and 2 attention blocks per
# original-resolution block (0.43 M parameters, 12.7 GMACs per 256² tile against the official 3.6 M and 141).
LITE = DEReferenceConfig(n_feat=16, scale_unetfeats=8, scale_orsnetfeats=8, num_cab=2)


class DEReferenceNet(nn.Module):
    """Three-stage progressive restorer: ``network(cloudy) -> restored``, both (B, bands, H, W) in [0, 1]."""

    def __init__(self, config: DEReferenceConfig) -> None:
        super().__init__()
        self.config = config
        c, f, red = config.bands, config.n_feat, config.reduction
        su, so = config.scale_unetfeats, config.scale_orsnetfeats
        act = nn.PReLU()  # one PReLU shared by every block, as in MPRNet (its weight is one parameter)
        self.shallow_feat1 = nn.Sequential(conv(c, f, 3), CAB(f, red, act))
        self.shallow_feat2 = nn.Sequential(conv(c, f, 3), CAB(f, red, act))
        self.shallow_feat3 = nn.Sequential(conv(c, f, 3), CAB(f, red, act))
        self.stage1_encoder = Encoder(f, red, act, su, csff=False)
        self.stage1_decoder = Decoder(f, red, act, su)
        self.stage2_encoder = Encoder(f, red, act, su, csff=True)
        self.stage2_decoder = Decoder(f, red, act, su)
        self.stage3_orsnet = ORSNet(f, so, red, act, su, config.num_cab)
        self.sam12 = SAM(f, c)
        self.sam23 = SAM(f, c)
        self.concat12 = conv(2 * f, f, 3)
        self.concat23 = conv(2 * f, f + so, 3)
        self.tail = conv(f + so, c, 3)

    def forward(self, x3_img: torch.Tensor) -> torch.Tensor:
        """Restore a cloudy image; stage 1 sees four quarters, stage 2 two halves, stage 3 the whole."""
        height, width = x3_img.shape[-2:]
        x2top_img, x2bot_img = x3_img[:, :, : height // 2], x3_img[:, :, height // 2 :]
        quarters = [
            x2top_img[..., : width // 2],
            x2top_img[..., width // 2 :],
            x2bot_img[..., : width // 2],
            x2bot_img[..., width // 2 :],
        ]
        ltop, rtop, lbot, rbot = (self.stage1_encoder(self.shallow_feat1(q)) for q in quarters)
        feat1_top = [torch.cat((a, b), 3) for a, b in zip(ltop, rtop, strict=True)]
        feat1_bot = [torch.cat((a, b), 3) for a, b in zip(lbot, rbot, strict=True)]
        res1_top = self.stage1_decoder(feat1_top)
        res1_bot = self.stage1_decoder(feat1_bot)
        x2top_samfeats, _ = self.sam12(res1_top[0], x2top_img)
        x2bot_samfeats, _ = self.sam12(res1_bot[0], x2bot_img)

        x2top_cat = self.concat12(torch.cat([self.shallow_feat2(x2top_img), x2top_samfeats], 1))
        x2bot_cat = self.concat12(torch.cat([self.shallow_feat2(x2bot_img), x2bot_samfeats], 1))
        feat2_top = self.stage2_encoder(x2top_cat, feat1_top, res1_top)
        feat2_bot = self.stage2_encoder(x2bot_cat, feat1_bot, res1_bot)
        feat2 = [torch.cat((a, b), 2) for a, b in zip(feat2_top, feat2_bot, strict=True)]
        res2 = self.stage2_decoder(feat2)
        x3_samfeats, _ = self.sam23(res2[0], x3_img)

        x3_cat = self.concat23(torch.cat([self.shallow_feat3(x3_img), x3_samfeats], 1))
        x3_cat = self.stage3_orsnet(x3_cat, feat2, res2)
        return self.tail(x3_cat) + x3_img


def build(config: Mapping[str, Any]) -> DEReferenceNet:
    """Rebuild a reference network from a card's config dict (the registry's hook)."""
    return DEReferenceNet(DEReferenceConfig.from_dict(config))
