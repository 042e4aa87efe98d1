"""Each method's typed schedule: its card JSON, old cards' keys and the official defaults."""

import dataclasses

import pytest
import torch

from models.sampling.bridge_schedules import i2sb_bridge
from models.sampling.noise_schedules import adm_linear_betas, alphas_cumprod, sigmoid_betas
from models.sampling.schedule_configs import (
    BridgeSchedule,
    DESchedule,
    DiffCRSchedule,
    Thresholding,
    schedule_from_dict,
)


@pytest.mark.parametrize(
    ("algorithm", "schedule"),
    [
        ("dbcr", BridgeSchedule("i2sb", 500)),
        ("diffcr", DiffCRSchedule("cosine", 200, "official", Thresholding(0.99, 1.5))),
        ("diffcr", DiffCRSchedule()),
        ("de", DESchedule("adm-linear", 1000, 0.25)),
    ],
)
def test_the_constructor_arguments_are_the_saved_config(algorithm, schedule):
    assert schedule_from_dict(algorithm, dataclasses.asdict(schedule)) == schedule


def test_old_cards_keys_and_absent_keys():
    old_diffcr = {
        "data_range": [-1.0, 1.0], "denoise_to_zero": True, "n_timestep": 1000, "name": "sigmoid", "order": 2,
        "prediction": "x0", "sampler": "dpm-solver++", "thresholding": {"max_val": 1.0, "ratio": 0.995},
        "time_input": "gamma",
    }  # fmt: skip
    assert schedule_from_dict("diffcr", old_diffcr) == DiffCRSchedule("sigmoid", 1000, "gamma", Thresholding())
    assert schedule_from_dict("diffcr", {}) == DiffCRSchedule("sigmoid", 1000, "gamma", None)
    assert schedule_from_dict("de", {"name": "adm-linear", "reference_model": "r"}) == DESchedule("adm-linear", 1000)
    assert schedule_from_dict("dbcr", {"kind": "linear"}) == BridgeSchedule("linear", 1000)
    assert schedule_from_dict("de-reference", {"data_range": [0.0, 1.0]}) is None
    with pytest.raises(ValueError, match="not readable"):
        schedule_from_dict("de", {"n_timestep": "many"})


def test_schedules_build_their_curves():
    assert torch.equal(BridgeSchedule("i2sb").alphas(), i2sb_bridge())
    assert torch.equal(DiffCRSchedule().betas(), sigmoid_betas(1000))
    assert torch.equal(DESchedule().alphas_cumprod(), alphas_cumprod(adm_linear_betas(1000)))
