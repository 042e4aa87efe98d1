import pytest
import torch
from safetensors.torch import save_file

from models.card import ModelCard, read_card, read_weights, save_weights


def test_card_and_weights_round_trip(tmp_path):
    card = ModelCard(name="x", algorithm="dbcr", config={"widths": [8, 16]}, metrics={"psnr": 30.0})
    path = tmp_path / "x.safetensors"
    save_weights(path, {"w": torch.arange(4.0)}, card)
    state, loaded = read_weights(path)
    assert loaded == card
    assert read_card(path) == card
    assert torch.equal(state["w"], torch.arange(4.0))


def test_file_without_card_is_rejected(tmp_path):
    path = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(ValueError, match="no model card"):
        read_card(path)


def test_unknown_card_fields_are_ignored():
    text = ModelCard(name="x", algorithm="dbcr", config={}).to_json().replace('"name"', '"future": 1, "name"')
    assert ModelCard.from_json(text).name == "x"
