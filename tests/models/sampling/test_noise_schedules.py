"""VP schedules as the official code builds them."""

import pytest
import torch

from models.sampling.noise_schedules import alphas_cumprod, make_betas


def test_sigmoid_endpoints_and_monotonicity():
    betas = make_betas("sigmoid", 1000)
    ac = alphas_cumprod(betas)
    assert betas.dtype == torch.float64 and betas.max().item() == pytest.approx(0.999)
    assert ac[0].item() > 0.999 and ac[-1].item() < 1e-3
    assert bool((ac[1:] <= ac[:-1]).all())
    # ᾱ at τ = 1/2 is exactly 1/2 by symmetry of the sigmoid.
    assert ac[499].item() == pytest.approx(0.5, abs=2e-3)


def test_adm_linear_matches_ddpm():
    betas = make_betas("adm-linear", 1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)


def test_cosine_and_linear_and_unknown():
    assert make_betas("cosine", 1000).max().item() <= 0.999
    assert make_betas("linear", 10, 1e-6, 1e-2)[-1].item() == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        make_betas("quadratic", 10)
