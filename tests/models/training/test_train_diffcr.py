"""DiffCR training: the restorer's input layout, SR3 noise levels, a resumable tiny run and a loadable card."""

import shutil

import numpy as np
import pytest
import torch

from models.networks.diffcr import DiffCRConfig
from models.registry import load_model
from models.restorers import diffcr_restorer
from models.sampling.noise_schedules import alphas_cumprod, make_betas
from models.training.chips import Chip, split_by_place
from models.training.loop_utils import read_export, save_model
from models.training.train_diffcr import (
    DiffCRSettings,
    condition,
    diffcr_card,
    sample_gammas,
    train_diffcr,
)

TINY = DiffCRConfig(bands=13, dates=1, sar_bands=2, width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), time_dim=32)
SETTINGS = DiffCRSettings(steps=2, batch=2, crop=32, eval_every=1, val_nfe=2)


def _chips():
    rng = np.random.default_rng(0)
    with_sar = Chip(rng.random((13, 40, 40), np.float32) * 0.2, rng.random((2, 40, 40), np.float32), "a", "t")
    without = Chip(rng.random((13, 48, 48), np.float32) * 0.2, None, "b", "t")
    held = Chip(rng.random((13, 40, 40), np.float32) * 0.2, rng.random((2, 40, 40), np.float32), "c", "t")
    return split_by_place([with_sar, without, held], ("c",))


def test_condition_is_each_date_optical_then_sar_on_minus_one_to_one():
    cloudy, sar = torch.full((1, 13, 4, 4), 0.5), torch.zeros(1, 2, 4, 4)
    cond = condition(cloudy, sar, DiffCRConfig(bands=13, dates=2, sar_bands=2))
    assert cond.shape == (1, 30, 4, 4)
    assert torch.all(cond[:, :13] == 0) and torch.all(cond[:, 13:15] == -1)  # missing SAR (zeros) -> -1
    assert torch.equal(cond[:, :15], cond[:, 15:])


def test_gammas_lie_between_neighbouring_alpha_bars():
    gammas = alphas_cumprod(make_betas("sigmoid", 1000)).float()
    torch.manual_seed(0)
    drawn = sample_gammas(gammas, 10000)
    assert drawn.min() >= gammas[-1] and drawn.max() <= gammas[0]
    assert 0.3 < drawn.mean() < 0.7  # the sigmoid schedule is symmetric around the middle


def test_training_runs_resumes_and_writes_a_loadable_card(tmp_path):
    train, validation = _chips()
    spectra = torch.full((3, 13), 0.4)
    logs: list[str] = []
    network, metrics, _ = train_diffcr(TINY, SETTINGS, train, validation, spectra, tmp_path, logs.append)
    assert len(logs) == 2 and {"psnr_output", "psnr_cloudy"} <= set(metrics)
    # resuming a finished run does no more steps and keeps the last validation
    resumed: list[str] = []
    _, again, _ = train_diffcr(TINY, SETTINGS, train, validation, spectra, tmp_path, resumed.append)
    assert resumed == [] and again == metrics
    exported = read_export(tmp_path / "checkpoint.pt", tmp_path / "log.jsonl")
    assert exported.step == 2 and exported.metrics == metrics
    path = tmp_path / "tiny.safetensors"
    save_model(path, network, diffcr_card("tiny", TINY, SETTINGS, {"t": 2}, metrics, 1.0))
    loaded, card = load_model(str(path))
    assert card.training["recipe"]["steps"] == 2 and card.schedule.time_input == "gamma"
    assert card.sar_bands == ("VV", "VH") and card.default_nfe == 2
    out = diffcr_restorer(loaded, card, nfe=2)(torch.rand(1, 13, 32, 32), torch.rand(1, 2, 32, 32), [(0, 0)])
    assert out.shape == (1, 13, 32, 32) and torch.isfinite(out).all()


def test_same_seed_gives_the_same_run(tmp_path):
    train, validation = _chips()
    spectra = torch.full((3, 13), 0.4)
    settings = DiffCRSettings(steps=1, batch=2, crop=32, eval_every=1, val_nfe=2)
    a, _, _ = train_diffcr(TINY, settings, train, validation, spectra, tmp_path / "a", lambda _: None)
    b, _, _ = train_diffcr(TINY, settings, train, validation, spectra, tmp_path / "b", lambda _: None)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_unsupported_sar_bands_are_refused(tmp_path):
    train, validation = _chips()
    with pytest.raises(ValueError, match="SAR bands"):
        config = DiffCRConfig(bands=13, dates=1, sar_bands=1, width=8, enc_blocks=(1,), dec_blocks=(1,))
        train_diffcr(config, SETTINGS, train, validation, torch.full((3, 13), 0.4), tmp_path, print)


def test_a_resumed_run_equals_an_unbroken_one(tmp_path):
    train, validation = _chips()
    spectra = torch.full((3, 13), 0.4)
    broken = tmp_path / "broken"
    broken.mkdir()

    def keep_step_one(line):  # the log line of step 2 comes before its checkpoint: the file still holds step 1
        if '"step": 2' in line:
            shutil.copy(tmp_path / "whole" / "checkpoint.pt", broken / "checkpoint.pt")

    whole, _, _ = train_diffcr(TINY, SETTINGS, train, validation, spectra, tmp_path / "whole", keep_step_one)
    assert torch.load(broken / "checkpoint.pt", weights_only=True)["step"] == 1
    resumed, _, _ = train_diffcr(TINY, SETTINGS, train, validation, spectra, broken, lambda _: None)
    for x, y in zip(whole.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_a_temporal_fill_network_learns_its_correction_from_one_date(tmp_path):
    from models.networks.diffcr import DiffCRNet
    from models.training.train_diffcr import training_step

    config = DiffCRConfig(bands=13, dates=3, width=8, enc_blocks=(1,), dec_blocks=(1,), time_dim=32, prior=True)
    network = DiffCRNet(config)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    gammas = alphas_cumprod(make_betas("sigmoid", 1000)).float()
    spectrum = torch.linspace(0.05, 0.15, 13)[None, :, None, None]
    clear = spectrum * (0.8 + 0.4 * torch.rand(2, 1, 16, 16))
    cloudy = clear.clone()
    cloudy[..., 4:12, 4:12] = 0.5  # bright and grey: s2cloudless's cloud; its local fill is not the ground
    loss = training_step(network, optimizer, gammas, clear, cloudy, torch.zeros(2, 2, 16, 16))
    assert loss > 0 and network.ending.weight.abs().sum() > 0  # the zero start moved
