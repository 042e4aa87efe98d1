"""The adapters from networks to ``denoise(x_t, t, cond) -> x0_hat``: time inputs, DE's fusion, DB-CR's call."""

import pytest
import torch

from models.denoisers import dbcr_denoiser, de_denoiser, diffcr_denoiser, fused_x0
from models.sampling.dpm_solver import DiscreteVPSchedule
from models.sampling.noise_schedules import adm_linear_betas, alphas_cumprod, sigmoid_betas

AC = alphas_cumprod(adm_linear_betas(1000))


def test_dbcr_denoiser_calls_the_network_as_it_is():
    x, t, sar = torch.rand(1, 2, 4, 4), torch.tensor([1000.0]), torch.rand(1, 2, 4, 4)
    assert torch.equal(dbcr_denoiser(lambda a, b, c: a * b + c)(x, t, sar), x * t + sar)


def test_diffcr_time_inputs():
    schedule = DiscreteVPSchedule.from_betas(sigmoid_betas(1000))
    seen = []

    def network(x_t, time_input, cond):
        seen.append(time_input)
        return x_t

    t = torch.tensor([1.0, 0.5])
    diffcr_denoiser(network, schedule, "official")(torch.zeros(2, 3, 4, 4), t, None)
    diffcr_denoiser(network, schedule, "gamma")(torch.zeros(2, 3, 4, 4), t, None)
    torch.testing.assert_close(seen[0], (t - 1 / 999) * 1000)
    torch.testing.assert_close(seen[1], schedule.alphas_cumprod(t))
    assert seen[1][0] < 1e-3 < seen[1][1] < 1
    with pytest.raises(ValueError):
        diffcr_denoiser(network, schedule, "seconds")


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


def test_de_denoiser_fuses_with_the_clamped_weight():
    ref = torch.full((1, 3, 4, 4), 0.5)

    def network(x_t, t, cloudy, reference):  # ε = 0 and w = 0 (clamped up to 0.3)
        return torch.zeros_like(x_t), torch.zeros_like(x_t)

    x_t = torch.full((1, 3, 4, 4), 0.2)
    x0 = de_denoiser(network, AC)(x_t, torch.tensor([0]), (x_t, ref))
    expected = 0.3 * 0.5 + 0.7 * (0.2 / float(AC[0]) ** 0.5)
    torch.testing.assert_close(x0, torch.full_like(x0, expected))


def test_a_prior_diffcr_denoiser_adds_the_prior_and_shows_it_to_the_network():
    schedule = DiscreteVPSchedule.from_betas(sigmoid_betas(1000))
    seen = []

    def network(x_t, time_input, cond):
        seen.append(cond)
        return torch.full_like(x_t, 0.25)

    dates, prior = torch.zeros(1, 8, 4, 4), torch.full((1, 3, 4, 4), -0.5)
    x0 = diffcr_denoiser(network, schedule, "gamma", prior=True)(
        torch.zeros(1, 3, 4, 4), torch.tensor([0.5]), (dates, prior)
    )
    torch.testing.assert_close(x0, torch.full_like(prior, -0.25))
    torch.testing.assert_close(seen[0], torch.cat([dates, prior], dim=1))
