"""DiffCR and DE restorers: reflectance in and out, position-fixed noise, dates and the reference network."""

import pytest
import torch

from models.card import ModelCard
from models.diffusion_restorers import de_restorer, diffcr_restorer
from models.networks.de import DEConfig, DENet
from models.networks.de_reference import DEReferenceConfig, DEReferenceNet
from models.networks.diffcr import DiffCRConfig, DiffCRNet

DIFFCR = DiffCRConfig(width=8, enc_blocks=(1,), dec_blocks=(1,), dates=2)
THRESHOLD = {"ratio": 0.995, "max_val": 1}
SCHEDULE = {"name": "sigmoid", "n_timestep": 1000, "time_input": "gamma", "thresholding": THRESHOLD}


def _diffcr():
    torch.manual_seed(0)
    network = DiffCRNet(DIFFCR).eval()
    card = ModelCard(name="t", algorithm="diffcr", config=DIFFCR.__dict__, sar_bands=(), schedule=SCHEDULE)
    return network, card


def test_diffcr_restorer_is_deterministic_and_in_reflectance():
    network, card = _diffcr()
    restore = diffcr_restorer(network, card, nfe=3, seed=5)
    optical = torch.rand(2, 6, 8, 8)  # two dates stacked
    out = restore(optical, None, [(0, 0), (0, 8)])
    assert out.shape == (2, 3, 8, 8)
    assert out.min() >= 0 and out.max() <= 1  # thresholded x0 in [-1, 1] maps into [0, 1]
    torch.testing.assert_close(restore(optical, None, [(0, 0), (0, 8)]), out, rtol=0, atol=0)
    assert not torch.equal(restore(optical, None, [(64, 0), (0, 8)])[0], out[0])


def test_diffcr_restorer_repeats_a_single_date_and_rejects_wrong_bands():
    network, card = _diffcr()
    restore = diffcr_restorer(network, card, nfe=2)
    single = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(restore(single, None, [(0, 0)]), restore(single.repeat(1, 2, 1, 1), None, [(0, 0)]))
    with pytest.raises(ValueError, match="needs 3 per date"):
        restore(torch.rand(1, 4, 8, 8), None, [(0, 0)])


def test_de_restorer_uses_the_reference():
    config = DEConfig(model_channels=32, channel_mult=(1, 2), attention_ds=(), wa_channels=32, wa_channel_mult=(1, 2))
    network = DENet(config).eval()  # zero-initialised outputs: ε = 0, w = 0 → clamped to 0.3
    card = ModelCard(name="d", algorithm="de", config=config.__dict__, schedule={"name": "adm-linear"})
    reference = DEReferenceNet(DEReferenceConfig(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)).eval()
    out = de_restorer(network, card, nfe=4, seed=1, reference=reference)(torch.rand(1, 3, 16, 16), None, [(0, 0)])
    assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="names no reference network"):
        de_restorer(network, card, nfe=4)
