"""DE's DDIM sampler: official step spacing, its steps, golden values."""

import pytest
import torch

from models.sampling.ddim import ddim_steps, ddim_timesteps, sample_ddim
from models.sampling.noise_schedules import adm_linear_betas, alphas_cumprod

AC = alphas_cumprod(adm_linear_betas(1000))


def test_official_ddim10_steps():
    assert ddim_timesteps(10) == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert ddim_timesteps(4) == [750, 500, 250, 0]
    assert ddim_timesteps(1) == [999]
    with pytest.raises(ValueError):
        ddim_timesteps(0)


def test_steps_carry_alpha_bar_at_each_timestep():
    steps = ddim_steps(4, AC.float())
    assert steps.timesteps == [750, 500, 250, 0]
    assert steps.alphas_cumprod.dtype == torch.float64
    assert torch.equal(steps.alphas_cumprod, AC.float().double()[[750, 500, 250, 0]])


def test_fallback_spacing_is_distinct_and_decreasing():
    steps = ddim_timesteps(999)
    assert len(steps) == 999 and len(set(steps)) == 999 and steps == sorted(steps, reverse=True)


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)


def _dummy(x_t, t, cond):
    return torch.tanh(x_t * 0.3 + cond) * (1 - t.reshape(-1, 1, 1, 1).float() / 2000)


def test_golden_values():
    # Agrees with a transcription of the official respaced ddim_sample_loop to 2e-6.
    x, cond = _inputs()
    out = sample_ddim(_dummy, x, ddim_steps(10, AC), cond)
    assert out.sum().item() == pytest.approx(-1.2361805438995361, abs=1e-4)
    assert out[0, 0, 0, :3].tolist() == pytest.approx(
        [0.9570649266242981, -0.9259530305862427, 0.42240110039711], abs=1e-5
    )


def test_last_step_returns_the_last_prediction_and_calls_once_per_step():
    x, cond = _inputs()
    seen = []

    def denoise(x_t, t, c):
        seen.append(int(t[0]))
        return torch.full_like(x_t, 0.25)

    calls = []
    out = sample_ddim(denoise, x, ddim_steps(10, AC), cond, lambda done, total: calls.append((done, total)))
    assert seen == ddim_timesteps(10) and calls == [(i, 10) for i in range(1, 11)]
    torch.testing.assert_close(out, torch.full_like(x, 0.25))
