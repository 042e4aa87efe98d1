import pytest
import torch

from models.sampling.bridge import bridge_steps, sample_bridge, uniform_timesteps
from models.sampling.bridge_schedules import i2sb_bridge, linear_bridge


def test_uniform_timesteps_run_from_T_to_zero():
    assert uniform_timesteps(1, 1000) == [1000, 0]
    assert uniform_timesteps(4, 1000) == [1000, 750, 500, 250, 0]
    with pytest.raises(ValueError):
        uniform_timesteps(0, 1000)


def test_nfe_one_is_a_single_forward_pass():
    calls = []

    def denoise(x, t, cond):
        calls.append(t.clone())
        return torch.full_like(x, 0.25)

    y = torch.rand(2, 3, 4, 4)
    out = sample_bridge(denoise, y, bridge_steps(1, linear_bridge()), None)
    assert len(calls) == 1 and torch.all(calls[0] == 1000)
    assert torch.equal(out, torch.full_like(y, 0.25))


def test_golden_values_for_a_halving_denoiser():
    # linear a_t, NFE 2: x0 = y/2 at t=1000 -> x_500 = 0.5 y + 0.5 * 0.5 y = 0.75 y;
    # x0 = 0.375 y at t=500 -> x_0 = 0.375 y
    y = torch.ones(1, 1, 2, 2)
    out = sample_bridge(lambda x, t, c: 0.5 * x, y, bridge_steps(2, linear_bridge()), None)
    assert torch.allclose(out, 0.375 * y)


def test_sampler_is_deterministic_and_reports_progress():
    steps = []
    y = torch.rand(1, 2, 3, 3)

    def denoise(x, t, c):
        return x * 0.9 + c

    five = bridge_steps(5, linear_bridge())
    a = sample_bridge(denoise, y, five, 0.01, callback=lambda i, n: steps.append((i, n)))
    b = sample_bridge(denoise, y, five, 0.01)
    assert torch.equal(a, b)
    assert steps == [(i, 5) for i in range(1, 6)]


def test_bridge_steps_pair_each_timestep_with_its_a_t():
    steps = bridge_steps(4, i2sb_bridge())
    assert steps.timesteps == [1000, 750, 500, 250, 0]
    assert torch.equal(steps.alphas, i2sb_bridge()[[1000, 750, 500, 250, 0]])


def test_schedules_rise_from_zero_to_one():
    for alphas in (linear_bridge(), i2sb_bridge()):
        assert alphas[0] == 0 and alphas[-1] == pytest.approx(1.0)
        assert torch.all(alphas[1:] > alphas[:-1])


def test_i2sb_schedule_matches_the_published_curve():
    alphas = i2sb_bridge()
    assert alphas[500] == pytest.approx(0.5, abs=0.01)
    assert alphas[250] == pytest.approx(0.212, abs=0.01)
    assert alphas[750] == pytest.approx(0.789, abs=0.01)
