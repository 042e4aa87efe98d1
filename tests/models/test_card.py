import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from models.card import ModelCard, card_schedule, read_card, read_weights, save_weights
from models.sampling.schedule_configs import BridgeSchedule, DESchedule, DiffCRSchedule, Thresholding

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"


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


def test_the_schedule_is_typed_and_written_as_its_constructor_arguments():
    card = ModelCard(name="x", algorithm="diffcr", config={}, schedule=DiffCRSchedule(thresholding=Thresholding()))
    written = json.loads(card.to_json())["schedule"]
    assert written == {"name": "sigmoid", "n_timestep": 1000, "time_input": "gamma",
                       "thresholding": {"ratio": 0.995, "max_val": 1.0}}  # fmt: skip
    assert ModelCard.from_json(card.to_json()) == card
    assert ModelCard(name="b", algorithm="dbcr", config={}).schedule == BridgeSchedule()
    assert ModelCard(name="r", algorithm="de-reference", config={}).schedule is None


def test_old_cards_keep_des_reference_among_the_schedule_keys():
    old = {"name": "d", "algorithm": "de", "config": {}, "schedule": {"name": "adm-linear", "reference_model": "ref"}}
    card = ModelCard.from_json(json.dumps(old))
    assert card.schedule == DESchedule() and card.reference_model == "ref"
    assert card_schedule(card, DESchedule) is card.schedule
    with pytest.raises(ValueError, match="needs a BridgeSchedule"):
        card_schedule(card, BridgeSchedule)


@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.safetensors")), ids=lambda p: p.stem)
def test_the_shipped_cards_load_as_before(path):
    card = read_card(path)
    expected = {
        "dbcr-lite": BridgeSchedule("linear", 1000),
        "diffcr-lite": DiffCRSchedule("sigmoid", 1000, "gamma", Thresholding(0.995, 1.0)),
        "de-lite": DESchedule("adm-linear", 1000, 0.3),
        "de-reference-lite": None,
        "rgb-cloud-lite": None,
    }
    assert card.schedule == expected[card.name]
    assert card.reference_model == ("de-reference-lite" if card.name == "de-lite" else None)
    # DB-CR's bridge and DE start from the local fill; the others have no start to choose
    assert card.bridge_start == ("local_fill" if card.name in ("dbcr-lite", "de-lite") else "cloudy")


def test_x0_prior_defaults_to_none_for_older_cards_and_is_validated():
    import json

    card = ModelCard(name="c", algorithm="diffcr", config={})
    raw = json.loads(card.to_json())
    del raw["x0_prior"]  # a card written before the field existed
    assert ModelCard.from_json(json.dumps(raw)).x0_prior == "none"
    assert ModelCard.from_json(card.replace(x0_prior="temporal_fill").to_json()).x0_prior == "temporal_fill"
    with pytest.raises(ValueError, match="x0_prior"):
        card.replace(x0_prior="median")
