"""``python -m backend train``: flags, each method's own defaults, and DB-CR's unchanged recipe."""

import argparse

import pytest

from backend.commands import train
from models.training.train_dbcr import TrainSettings
from models.training.train_de import DESettings, ReferenceSettings
from models.training.train_diffcr import DiffCRSettings


def _parse(*argv):
    parser = argparse.ArgumentParser()
    train.register(parser.add_subparsers())
    return parser.parse_args(["train", *argv])


def test_dbcr_keeps_its_defaults():
    args = _parse("dbcr")
    assert train.recipe(TrainSettings(), args) == TrainSettings(steps=3000, batch=8, crop=128, lr=3e-4, eval_every=250)
    assert args.config == "lite" and not args.export_only and args.threads == 0


@pytest.mark.parametrize("algorithm", ["diffcr", "de", "de-reference"])
def test_every_method_takes_the_same_flags(algorithm, tmp_path):
    args = _parse(algorithm, "--steps", "7", "--batch", "3", "--crop", "64", "--lr", "1e-3", "--seed", "4",
                  "--eval-every", "2", "--threads", "1", "--run-dir", str(tmp_path), "--out", str(tmp_path / "w"),
                  "--data-root", str(tmp_path), "--export-only")  # fmt: skip
    defaults = {"diffcr": DiffCRSettings(), "de": DESettings(), "de-reference": ReferenceSettings()}[algorithm]
    settings = train.recipe(defaults, args)
    assert (settings.steps, settings.batch, settings.crop, settings.lr, settings.seed, settings.eval_every) == (
        7, 3, 64, 1e-3, 4, 2,
    )  # fmt: skip
    assert args.export_only and args.run_dir == tmp_path


def test_unset_flags_keep_the_method_recipe():
    assert train.recipe(DESettings(), _parse("de", "--steps", "5")) == DESettings(steps=5)


def test_unknown_algorithm_and_config_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _parse("palette")
    args = _parse("diffcr", "--config", "huge", "--data-root", str(tmp_path))
    assert train.main(args) == 2 and "choose lite or paper" in capsys.readouterr().err


def test_init_from_takes_a_model_of_the_same_method_and_config_only(tmp_path):
    import torch

    from models.card import ModelCard, save_weights
    from models.networks import de_reference

    network = de_reference.DEReferenceNet(de_reference.LITE)
    config = de_reference.LITE.__dict__
    card = ModelCard(name="ref", algorithm="de-reference", config=dict(config), optical_bands=("B4", "B3", "B2"))
    path = tmp_path / "ref.safetensors"
    save_weights(path, {k: v.clone() for k, v in network.state_dict().items()}, card)
    initial = train._initial_weights(_parse("de-reference", "--init-from", str(path)), de_reference.LITE)
    assert initial is not None and all(torch.equal(initial[k], v) for k, v in network.state_dict().items())
    with pytest.raises(FileNotFoundError, match="not a diffcr model"):
        train._initial_weights(_parse("diffcr", "--init-from", str(path)), de_reference.LITE)
    assert train._initial_weights(_parse("de-reference"), de_reference.LITE) is None


def test_bridge_start_flag_offers_the_cards_choices():
    from models.card import BRIDGE_STARTS

    assert train.BRIDGE_STARTS == BRIDGE_STARTS
    assert train.recipe(TrainSettings(), _parse("dbcr", "--bridge-start", "local_fill")).bridge_start == "local_fill"
    assert train.recipe(TrainSettings(), _parse("dbcr")).bridge_start == "cloudy"
    with pytest.raises(SystemExit):
        _parse("dbcr", "--bridge-start", "median")


def test_rgb_cloud_trains_from_the_rice_pairs_and_writes_a_detector(tmp_path):
    import numpy as np
    from PIL import Image

    from models.card import read_card
    from models.training.train_rgb_cloud import RgbCloudSettings

    rice = tmp_path / "data" / "rice2"
    rice.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(1, 11):  # the 10th is held out
        clear = rng.integers(30, 90, (32, 32, 3), dtype=np.uint8)
        cloudy = clear.copy()
        cloudy[:16] = 230
        Image.fromarray(cloudy).save(rice / f"{index}_real_A.png")
        Image.fromarray(clear).save(rice / f"{index}_real_B.png")
    out = tmp_path / "d.safetensors"
    args = _parse("rgb-cloud", "--steps", "2", "--eval-every", "1", "--batch", "2", "--data-root",
                  str(tmp_path / "data"), "--run-dir", str(tmp_path / "run"), "--out", str(out))  # fmt: skip
    assert train.recipe(RgbCloudSettings(), args) == RgbCloudSettings(steps=2, eval_every=1, batch=2)
    assert train.main(args) == 0
    card = read_card(out)
    assert card.algorithm == "rgb-cloud" and card.training["train_pairs"] == 9
    assert set(card.metrics["validation_rice2_held_out"]) >= {"score", "iou_rice2", "clear_flagged_rice2", "step"}
