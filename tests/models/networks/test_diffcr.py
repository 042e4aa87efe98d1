"""DiffCR network: the paper's size, equivalence with the official network, bands/dates/SAR from the config."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.card import read_weights
from models.importers import build_network, import_checkpoint
from models.networks.diffcr import DiffCRConfig, DiffCRNet, build

OFFICIAL = Path(__file__).resolve().parents[4] / "shared" / "reference" / "official-checkpoints"


def _official(name):
    if not (OFFICIAL / name).is_file():
        pytest.skip(f"official fixture {name} not available")
    return OFFICIAL / name


def test_paper_config_has_the_official_parameter_count():
    with torch.device("meta"):  # counts shapes only: no memory, no init time
        network = DiffCRNet(DiffCRConfig.paper())
    assert sum(p.numel() for p in network.parameters()) == 22_937_731


def test_matches_the_official_network_through_the_importer(tmp_path):
    out = tmp_path / "diffcr.safetensors"
    import_checkpoint("diffcr-official", _official("diffcr_official_w8_weights.safetensors"), out)
    state, card = read_weights(out)
    network = build_network(card).eval()
    network.load_state_dict(state, strict=True)
    io = load_file(str(_official("diffcr_official_w8_io.safetensors")))
    inp = io["input"]  # cat(cloudy_1, cloudy_2, cloudy_3, noisy_target)
    with torch.no_grad():
        out = network(inp[:, 9:], io["gamma"], inp[:, :9])
    torch.testing.assert_close(out, io["output"], atol=1e-4, rtol=0)


@pytest.mark.parametrize(("bands", "dates", "sar", "size"), [(13, 3, 2, 24), (4, 2, 0, 16), (3, 1, 0, 20)])
def test_bands_dates_and_sar_come_from_the_config(bands, dates, sar, size):
    config = DiffCRConfig(bands=bands, dates=dates, sar_bands=sar, width=8, enc_blocks=(1, 1), dec_blocks=(1, 1))
    network = build(config.__dict__ | {"enc_blocks": [1, 1], "dec_blocks": [1, 1]})
    assert network.config == config
    x_t = torch.randn(2, bands, size, size)
    cond = torch.randn(2, dates * (bands + sar), size, size)
    with torch.no_grad():
        out = network(x_t, torch.rand(2), cond)
    assert out.shape == x_t.shape  # padded to a multiple of 4 inside, cropped back


def test_dates_share_one_encoder_so_their_order_does_not_matter():
    torch.manual_seed(0)
    network = DiffCRNet(DiffCRConfig(width=8, enc_blocks=(1, 1), dec_blocks=(1, 1))).eval()
    for p in network.parameters():  # beta/gamma start at zero; make every branch count
        p.data.normal_(0, 0.2)
    x_t, dates = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 3, 8, 8)
    with torch.no_grad():
        a = network(x_t, torch.tensor([0.5]), dates.flatten(1, 2))
        b = network(x_t, torch.tensor([0.5]), dates[:, [2, 0, 1]].flatten(1, 2))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_prior_network_starts_at_zero_and_sees_the_prior_beside_x_t():
    config = DiffCRConfig(bands=4, dates=3, width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), prior=True)
    assert config.cond_channels == 5 and config.cond_total == 3 * 5 + 4  # each date's mask, then the prior
    network = DiffCRNet(config).eval()
    x_t, cond = torch.randn(1, 4, 20, 20), torch.randn(1, config.cond_total, 20, 20)
    with torch.no_grad():
        assert torch.equal(network(x_t, torch.rand(1), cond), torch.zeros_like(x_t))
        for p in network.parameters():  # a trained network: the prior's channels change the output
            p.data.normal_(0, 0.2)
        other = cond.clone()
        other[:, -4:] += 1.0
        assert not torch.allclose(network(x_t, torch.tensor([0.5]), cond), network(x_t, torch.tensor([0.5]), other))
