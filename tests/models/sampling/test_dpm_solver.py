"""DiffCR's DPM-Solver++ sampler: golden values with a dummy denoiser, the schedule, thresholding, NFE."""

import pytest
import torch

from models.sampling.dpm_solver import DiscreteVPSchedule, dpm_solver_steps, dynamic_thresholding, sample_dpm_solver
from models.sampling.noise_schedules import linear_betas, sigmoid_betas


@pytest.fixture(scope="module")
def schedule():
    return DiscreteVPSchedule.from_betas(sigmoid_betas(1000))


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)


def _dummy(x_t, t, cond):
    # Over-range predictions on purpose, so dynamic thresholding takes part.
    return torch.tanh(0.8 * x_t + 0.5 * cond) * 1.2 + 0.1 * t.reshape(-1, 1, 1, 1)


# Goldens from this implementation, which agrees with a transcription of the official
# core/dpm_solver_pytorch.py (multistep, order 2, dpmsolver++, dynamic thresholding) to 2e-6.
@pytest.mark.parametrize(
    ("nfe", "total", "first_row", "last_row"),
    [
        (
            21,
            0.7142032384872437,
            [0.9453725814819336, -0.9219517111778259, 0.4768029749393463],
            [0.59670090675354, -0.903139054775238],
        ),
        (
            6,
            2.1116137504577637,
            [0.9025513529777527, -0.9258005619049072, 0.34092748165130615],
            [0.167557954788208, -0.9149684309959412],
        ),
    ],
)
def test_golden_values(schedule, nfe, total, first_row, last_row):
    x, cond = _inputs()
    out = sample_dpm_solver(_dummy, x, dpm_solver_steps(nfe, schedule), cond)
    assert out.sum().item() == pytest.approx(total, abs=1e-4)
    assert out[0, 0, 0, :3].tolist() == pytest.approx(first_row, abs=1e-5)
    assert out[1, 2, 3, :2].tolist() == pytest.approx(last_row, abs=1e-5)


@pytest.mark.parametrize(("nfe", "denoise_to_zero"), [(21, True), (2, True), (7, False), (1, False)])
def test_nfe_counts_network_calls(schedule, nfe, denoise_to_zero):
    calls = []
    x, cond = _inputs()
    steps = dpm_solver_steps(nfe, schedule, denoise_to_zero)
    assert steps.nfe == nfe
    sample_dpm_solver(_dummy, x, steps, cond, lambda done, total: calls.append((done, total)))
    assert calls == [(i, nfe) for i in range(1, nfe + 1)]


def test_batch_items_are_independent(schedule):
    x, cond = _inputs()
    five = dpm_solver_steps(5, schedule)
    both = sample_dpm_solver(_dummy, x, five, cond)
    one = sample_dpm_solver(_dummy, x[1:], five, cond[1:])
    torch.testing.assert_close(both[1:], one, atol=1e-6, rtol=0)


def test_too_few_evaluations_is_an_error(schedule):
    with pytest.raises(ValueError, match="no solver step"):
        dpm_solver_steps(1, schedule)


def test_sigmoid_schedule_drops_its_last_step_like_the_official_clip(schedule):
    # ᾱ reaches 0 at T, so the half log-SNR falls below -5.1 for the last step only.
    assert schedule.total_n == 999
    assert schedule.official_time_input(torch.tensor([1.0])).item() == pytest.approx(998.999, abs=1e-3)
    assert schedule.official_time_input(torch.tensor([1 / 999])).item() == pytest.approx(0.0, abs=1e-4)


def test_schedule_matches_alphas_cumprod_at_the_steps():
    betas = linear_betas(1000)
    schedule = DiscreteVPSchedule.from_betas(betas)
    ac = torch.cumprod(1 - betas, 0)
    n = torch.tensor([0, 499, 999])
    got = schedule.alphas_cumprod((n + 1).float() / 1000)
    torch.testing.assert_close(got, ac[n].float(), atol=1e-6, rtol=1e-5)


def test_dynamic_thresholding_leaves_in_range_values_and_rescales_outliers():
    inside = torch.linspace(-0.9, 0.9, 48).reshape(1, 3, 4, 4)
    torch.testing.assert_close(dynamic_thresholding(inside), inside)
    big = inside * 4
    out = dynamic_thresholding(big)
    assert out.abs().max().item() <= 1.0 + 1e-6
    assert out.abs().max().item() == pytest.approx(1.0, abs=1e-6)
