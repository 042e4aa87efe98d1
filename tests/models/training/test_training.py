import dataclasses
import json
import random

import numpy as np
import pytest
import torch

from models.card import read_card
from models.networks.dbcr import DBCRConfig
from models.training.batches import augment, sample_batch
from models.training.chips import Chip, scale_sar_db, split_by_place
from models.training.clouds import simulate_clouds
from models.training.train_dbcr import TrainSettings, dbcr_card, masked_l1, save_model, train_dbcr

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


def test_the_balanced_loss_weighs_clear_ground_as_much_as_the_cloud():
    from models.training.train_dbcr import balanced_l1

    target = torch.zeros(1, 2, 4, 4)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., :3, :] = True  # 12 cloudy pixels, 4 clear
    wrong_on_clear = target.clone()
    wrong_on_clear[..., 3, :] = 1.0
    # a plain mean hides the clear pixels' error behind the many cloudy ones; the balanced loss does not
    assert torch.nn.functional.l1_loss(wrong_on_clear, target).item() == 0.25
    assert balanced_l1(wrong_on_clear, target, mask).item() == 1.0
    assert balanced_l1(target, target, mask).item() == 0.0
    assert balanced_l1(wrong_on_clear, target, torch.zeros_like(mask)).item() == 0.25  # no cloud: the plain mean


def test_the_cloud_footprint_is_the_visible_change():
    from models.training.clouds import cloud_footprint

    clear = torch.zeros(1, 13, 2, 3)
    cloudy = clear.clone()
    cloudy[:, 1:4, 0, 0] = 0.5
    cloudy[:, 10] = 0.5  # cirrus only: not visible
    cloudy[:, 1:4, 1, 2] = 0.01  # below the 0.02 threshold
    assert cloud_footprint(cloudy, clear)[0, 0].tolist() == [[True, False, False], [False, False, False]]


def _pairs(count: int = 2):
    from models.datasets.real_pairs import RealPair

    rng = np.random.default_rng(1)
    pairs = []
    for index in range(count):
        clear = rng.random((13, 40, 40), np.float32) * 0.2
        cloudy = clear.copy()
        cloudy[:, :20] = 0.6
        pairs.append(RealPair(f"p{index}", "s", cloudy, clear))
    return pairs


def test_real_pair_crops_keep_cloudy_and_clear_aligned():
    from models.training.batches import sample_real_pairs

    pair = _pairs(1)[0]
    clear, cloudy = sample_real_pairs([pair], 4, 16, random.Random(0))
    assert clear.shape == cloudy.shape == (4, 13, 16, 16)
    bright = cloudy[:, 1] > 0.5  # wherever a crop is cloudy, the clear crop is the same window's ground
    assert torch.all(clear[:, 1][bright] < 0.25)
    assert torch.equal(cloudy[~bright.unsqueeze(1).expand_as(cloudy)], clear[~bright.unsqueeze(1).expand_as(clear)])


def test_training_with_real_pairs_validates_on_them_and_keeps_the_best(tmp_path):
    train, validation = split_by_place(_chips(), ("c",))
    spectra = torch.full((3, 13), 0.4)
    settings = TrainSettings(steps=3, batch=3, crop=32, eval_every=1, real_share=0.5)
    logs = []
    pairs = _pairs()
    _, metrics = train_dbcr(TINY, settings, train, validation, spectra, tmp_path, logs.append, None, pairs, pairs)
    lines = [__import__("json").loads(line) for line in logs]
    assert len(lines) == 3 and all("real_psnr_output_cloud" in line and "psnr_output_clear" in line for line in lines)
    best = max(lines, key=lambda line: line["score"])
    assert metrics["step"] == best["step"] and metrics["score"] == best["score"]
    assert (tmp_path / "best.pt").exists()


def test_clear_ground_is_kept_exactly_outside_the_cloud():
    from models.training.clouds import keep_clear_ground

    clear = torch.full((1, 13, 2, 2), 0.1)
    cloudy = clear + 0.01  # a faint veil everywhere, below the visible threshold ...
    cloudy[..., 0, 0] = 0.7  # ... and one cloudy pixel
    kept = keep_clear_ground(cloudy, clear)
    assert kept[..., 0, 0].eq(0.7).all()
    assert torch.equal(kept[..., 1, :], clear[..., 1, :]) and torch.equal(kept[..., 0, 1], clear[..., 0, 1])


def test_a_local_fill_run_scores_what_users_get_and_its_start_is_a_candidate(tmp_path):
    train, validation = split_by_place(_chips(), ("c",))
    spectra = torch.full((3, 13), 0.4)
    settings = TrainSettings(steps=2, batch=2, crop=32, eval_every=1, real_share=0.5, bridge_start="local_fill")
    config = dataclasses.replace(TINY, cloudy_channels=14)
    logs = []
    pairs = _pairs()
    _, metrics = train_dbcr(config, settings, train, validation, spectra, tmp_path, logs.append, None, pairs, pairs)
    lines = [json.loads(line) for line in logs]
    assert [line["step"] for line in lines] == [0, 1, 2]
    # Step 0 is the fresh network: the local fill under the clouds, the input elsewhere (but for the feathered rim).
    first = lines[0]
    assert first["real_psnr_output_cloud"] == pytest.approx(first["real_psnr_local_fill_cloud"])
    assert first["real_psnr_cloudy_clear"] == 240.0 and first["real_psnr_output_clear"] > 100
    assert metrics["score"] == max(line["score"] for line in lines)
    assert read_card_of_run(config, settings, metrics).bridge_start == "local_fill"


def read_card_of_run(config, settings, metrics):
    return dbcr_card("fill", config, settings, {"t": 2}, metrics, 1.0)


def test_masked_l1_counts_the_clouds_and_a_tenth_of_the_clear_pixels():
    prediction, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    mask = torch.tensor([[[[True, True], [False, False]]]])
    assert float(masked_l1(prediction, target, mask)) == pytest.approx(0.5)
    target[..., 1, 0] = 1.0
    assert float(masked_l1(prediction, target, mask)) == pytest.approx(0.5 + 0.1 * 0.5)
