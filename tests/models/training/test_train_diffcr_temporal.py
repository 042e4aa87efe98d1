"""train_diffcr_temporal: simulated dates, series-style validation from step 0, the best checkpoint kept."""

import json
import random

import numpy as np
import torch

from models.card import ModelCard
from models.networks.diffcr import DiffCRConfig
from models.training.chips import Chip
from models.training.train_diffcr import DiffCRSettings
from models.training.train_diffcr_temporal import BEST_FILE, simulated_dates, temporal_card, train_temporal

TINY = DiffCRConfig(bands=13, dates=3, width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), time_dim=32, prior=True)
SETTINGS = DiffCRSettings(steps=2, batch=2, crop=32, eval_every=1, val_nfe=2)
SPECTRUM = np.linspace(0.05, 0.15, 13, dtype=np.float32)[:, None, None]


def _ground(rng: np.random.Generator, size: int) -> np.ndarray:
    return SPECTRUM * (0.8 + 0.4 * rng.random((1, size, size), np.float32))


def _validation() -> dict[str, torch.Tensor]:
    """Two items of three dates: a cloud on the first, the later dates clear; the target is the ground."""
    rng = np.random.default_rng(1)
    ground = torch.from_numpy(np.stack([_ground(rng, 32) for _ in range(2)]))
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    first = torch.where(mask > 0, torch.full_like(ground, 0.5), ground)
    return {"dates": torch.cat([first, ground, ground], dim=1), "target": ground, "mask": mask}


def test_later_dates_have_other_clouds_and_another_radiometry():
    clear = torch.from_numpy(_ground(np.random.default_rng(0), 32))[None].repeat(2, 1, 1, 1)
    dates = simulated_dates(clear, torch.full((3, 13), 0.4), random.Random(0), 3)
    assert dates.shape == (2, 3, 13, 32, 32)
    assert not torch.equal(dates[:, 0], dates[:, 1]) and not torch.equal(dates[:, 1], dates[:, 2])


def test_training_validates_from_step_zero_and_keeps_the_best(tmp_path):
    rng = np.random.default_rng(0)
    chips = [Chip(_ground(rng, 40), None, place, "t") for place in ("a", "b")]
    card = temporal_card("validation", TINY, SETTINGS)
    logs: list[str] = []
    network, metrics, _, kept = train_temporal(
        TINY, SETTINGS, card, chips, _validation(), torch.full((3, 13), 0.4), tmp_path, logs.append
    )
    lines = [json.loads(line) for line in logs]
    assert lines[0]["step"] == 0 and lines[0]["psnr_cloud"] > 30  # the fill from the clear later dates
    assert [line.get("step") for line in lines[1:3]] == [1, 2] and lines[-1]["kept_step"] == kept
    best = max(lines[:3], key=lambda line: line["psnr_output"])
    assert kept == best["step"] and metrics["psnr_output"] == best["psnr_output"]
    assert (tmp_path / BEST_FILE).exists() == (kept > 0)
    if kept == 0:  # the untrained start: the last layer is still zero
        assert network.ending.weight.abs().sum() == 0


def test_a_step_zero_card_says_the_output_is_the_temporal_fill():
    card = temporal_card("diffcr-t", TINY, SETTINGS, kept_step=0)
    assert isinstance(card, ModelCard) and card.x0_prior == "temporal_fill" and card.sar_bands == ()
    assert "what fills the clouds is that temporal fill itself" in card.description
    assert "not held out" in card.training["validation"]
