"""DE's DDIM sampler and per-step fusion: official step spacing, golden values, the fusion formula."""

import pytest
import torch

from models.sampling.ddim import ddim_timesteps, fused_x0, sample_ddim
from models.sampling.noise_schedules import adm_linear_betas, alphas_cumprod

AC = alphas_cumprod(adm_linear_betas(1000))


def test_official_ddim10_steps():
    assert ddim_timesteps(10) == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert ddim_timesteps(4) == [750, 500, 250, 0]
    assert ddim_timesteps(1) == [999]
    with pytest.raises(ValueError):
        ddim_timesteps(0)


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
    out = sample_ddim(_dummy, x, cond, AC, nfe=10)
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

    out = sample_ddim(denoise, x, cond, AC, nfe=10)
    assert seen == ddim_timesteps(10)
    torch.testing.assert_close(out, torch.full_like(x, 0.25))


def test_fusion_formula():
    g = torch.Generator().manual_seed(3)
    x_t, eps, ref = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(3))
    w = torch.rand(2, 3, 4, 4, generator=g) * 1.6 - 0.3
    t = torch.tensor([10, 700])
    ac = AC[t].float().reshape(-1, 1, 1, 1)
    x0_eps = ((x_t - (1 - ac).sqrt() * eps) / ac.sqrt()).clamp(-1, 1)
    wc = w.clamp(0.3, 1)
    expected = wc * ref + (1 - wc) * x0_eps
    torch.testing.assert_close(fused_x0(x_t, eps, w, ref, AC, t), expected, atol=1e-5, rtol=1e-5)
