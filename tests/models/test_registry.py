import pytest
import torch

from models import registry
from models.card import ModelCard, save_weights
from models.networks.dbcr import DBCRConfig, DBCRNet
from models.restorers import make_restorer

TINY = DBCRConfig(widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 2))


def _save_tiny(path, identity=False):
    net = DBCRNet(TINY)
    if identity:  # only the ending conv adds to the global residual
        torch.nn.init.zeros_(net.ending.weight)
        torch.nn.init.zeros_(net.ending.bias)
    card = ModelCard(name="tiny", algorithm="dbcr", config=TINY.to_dict(), tile_size=32)
    save_weights(path, net.state_dict(), card)
    return net


def test_load_model_rebuilds_the_network_from_the_card(tmp_path):
    original = _save_tiny(tmp_path / "tiny.safetensors")
    network, card = registry.load_model(str(tmp_path / "tiny.safetensors"))
    assert card.name == "tiny" and not network.training
    for a, b in zip(original.state_dict().values(), network.state_dict().values()):
        assert torch.equal(a, b)


def test_unknown_model_name_says_what_exists():
    with pytest.raises(registry.ModelNotFoundError, match="No model named 'nope'"):
        registry.load_model("nope")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(registry.ModelNotFoundError, match="does not exist"):
        registry.load_model(str(tmp_path / "gone.safetensors"))


def test_weights_of_another_shape_are_rejected(tmp_path):
    card = ModelCard(name="bad", algorithm="dbcr", config=TINY.to_dict())
    save_weights(tmp_path / "bad.safetensors", {"nonsense": torch.zeros(1)}, card)
    with pytest.raises(registry.ModelNotFoundError, match="does not match"):
        registry.load_model(str(tmp_path / "bad.safetensors"))


def test_list_models_counts_params_and_macs():
    rows = {row.name: row for row in registry.list_models()}
    paper = rows["dbcr-paper"]
    assert paper.kind == "config" and 16e6 < paper.params < 20e6
    assert 10 < paper.gmacs_256 < 20


def test_restorer_runs_the_bridge_on_reflectance(tmp_path):
    _save_tiny(tmp_path / "tiny.safetensors", identity=True)
    network, card = registry.load_model(str(tmp_path / "tiny.safetensors"))
    restore = make_restorer(network, card, nfe=3)
    optical = torch.rand(2, 13, 32, 32) * 1.5
    out = restore(optical, torch.rand(2, 2, 32, 32), [(0, 0), (0, 16)])
    assert out.shape == optical.shape
    # an identity network leaves the bridge at the cloudy image, clipped to the reflectance range
    assert torch.allclose(out, optical.clamp(0, 1), atol=1e-6)
    with pytest.raises(ValueError, match="SAR"):
        restore(optical, None, [])
