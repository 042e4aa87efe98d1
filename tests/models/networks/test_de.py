"""DE networks: the paper's sizes, equivalence with the official network, the reference net."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.card import read_weights
from models.importers import build_network, import_checkpoint
from models.networks.de import DEConfig, DENet
from models.networks.de_reference import DEReferenceConfig, DEReferenceNet

OFFICIAL = Path(__file__).resolve().parents[4] / "shared" / "reference" / "official-checkpoints"


def _official(name):
    if not (OFFICIAL / name).is_file():
        pytest.skip(f"official fixture {name} not available")
    return OFFICIAL / name


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("bands", "expected"), [(3, 36_800_326), (4, 36_805_224)])
def test_paper_config_has_the_official_parameter_count(bands, expected):
    with torch.device("meta"):
        network = DENet(DEConfig.paper(bands))
    assert _count(network) == expected


def test_matches_the_official_network_through_the_importer(tmp_path):
    out = tmp_path / "de.safetensors"
    card = import_checkpoint("de-official", _official("de_official_c32_weights.safetensors"), out)
    assert card.config["model_channels"] == 32 and card.config["channel_mult"] == [1, 1, 2, 2, 3]
    state, card = read_weights(out)
    network = build_network(card).eval()
    network.load_state_dict(state, strict=True)
    io = load_file(str(_official("de_official_c32_io.safetensors")))
    with torch.no_grad():
        eps, w = network(io["x_t"], io["timesteps"], io["low_res"], io["reference"])
    torch.testing.assert_close(eps, io["eps"], atol=1e-4, rtol=0)
    torch.testing.assert_close(w, io["w"], atol=1e-4, rtol=0)


def test_wa_net_starts_at_zero_weight():
    network = DENet(DEConfig(model_channels=32, channel_mult=(1, 2), wa_channels=32, wa_channel_mult=(1, 2)))
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        eps, w = network(x, torch.tensor([500]), x, x)
    assert torch.count_nonzero(w) == 0 and torch.count_nonzero(eps) == 0


@pytest.mark.parametrize("bands", [3, 4])
def test_reference_net_has_the_official_layout(bands):
    keys = json.loads(_official("de-full-keys.json").read_text())["reference_networks"]
    (official,) = [v for k, v in keys.items() if k.endswith(f"{bands} bands")]
    with torch.device("meta"):
        network = DEReferenceNet(DEReferenceConfig.paper(bands))
    state = network.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == official["keys"]
    assert _count(network) == official["parameters"]


def test_reference_net_restores_at_the_input_shape():
    network = DEReferenceNet(DEReferenceConfig(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)).eval()
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        assert network(x).shape == x.shape
