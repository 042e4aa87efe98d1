import random

import numpy as np
import torch

from models.card import read_card
from models.networks.dbcr import DBCRConfig
from models.training.batches import augment, sample_batch
from models.training.chips import Chip, scale_sar_db, split_by_place
from models.training.clouds import simulate_clouds
from models.training.train_dbcr import TrainSettings, dbcr_card, save_model, train_dbcr

TINY = DBCRConfig(widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 2))


def _chips():
    rng = np.random.default_rng(0)
    with_sar = Chip(rng.random((13, 40, 40), np.float32) * 0.2, rng.random((2, 40, 40), np.float32), "a", "t")
    without = Chip(rng.random((13, 48, 48), np.float32) * 0.2, None, "b", "t")
    held = Chip(rng.random((13, 40, 40), np.float32) * 0.2, rng.random((2, 40, 40), np.float32), "c", "t")
    return [with_sar, without, held]


def test_sar_db_is_clipped_and_scaled_per_band():
    db = np.array([[[-30.0, -12.5, 5.0]], [[-40.0, -16.25, 0.0]]], np.float32)
    assert np.allclose(scale_sar_db(db), [[[0.0, 0.5, 1.0]], [[0.0, 0.5, 1.0]]])


def test_split_keeps_each_place_on_one_side():
    train, validation = split_by_place(_chips(), ("c",))
    assert {c.place for c in train} == {"a", "b"} and [c.place for c in validation] == ["c"]


def test_augment_applies_the_same_transform_to_every_array():
    a = np.arange(16.0).reshape(1, 4, 4)
    out_a, out_b = augment([a, a.copy()], random.Random(3))
    assert np.array_equal(out_a, out_b) and sorted(out_a.ravel()) == sorted(a.ravel())


def test_batches_have_sar_zeros_where_a_chip_has_none():
    batch = sample_batch(_chips()[:2], 16, 32, random.Random(0), pair_share=0.0, sar_dropout=0.0)
    assert batch.clear.shape == (16, 13, 32, 32) and batch.sar.shape == (16, 2, 32, 32)
    for sar, has in zip(batch.sar, batch.has_sar):
        assert bool(has) == bool(sar.abs().sum() > 0)


def test_simulated_clouds_brighten_and_are_reproducible():
    clear = torch.full((4, 13, 32, 32), 0.05)
    spectra = torch.full((3, 13), 0.4)
    torch.manual_seed(0)
    a = simulate_clouds(clear, spectra, random.Random(1), clear_fraction=0.0)
    torch.manual_seed(0)
    b = simulate_clouds(clear, spectra, random.Random(1), clear_fraction=0.0)
    assert torch.equal(a, b)
    assert a.mean() > clear.mean()


def test_training_runs_resumes_and_writes_a_card(tmp_path):
    chips = _chips()
    train, validation = split_by_place(chips, ("c",))
    spectra = torch.full((3, 13), 0.4)
    settings = TrainSettings(steps=2, batch=2, crop=32, eval_every=1)
    logs = []
    network, metrics = train_dbcr(TINY, settings, train, validation, spectra, tmp_path, logs.append)
    assert len(logs) == 2 and "psnr_output" in metrics
    assert (tmp_path / "checkpoint.pt").exists()
    # resuming a finished run does no more steps
    resumed_logs = []
    train_dbcr(TINY, settings, train, validation, spectra, tmp_path, resumed_logs.append)
    assert resumed_logs == []
    card = dbcr_card("tiny", TINY, settings, {"t": 2}, metrics, 1.0)
    save_model(tmp_path / "tiny.safetensors", network, card)
    assert read_card(tmp_path / "tiny.safetensors").training["recipe"]["steps"] == 2
