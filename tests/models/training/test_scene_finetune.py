import random

import numpy as np
import pytest
import torch

from models.card import ModelCard
from models.cloudmask import brightness_cloud_mask, brightness_cloud_probability
from models.networks.dbcr import DBCRConfig, DBCRNet
from models.networks.diffcr import DiffCRConfig, DiffCRNet
from models.sampling.schedule_configs import BridgeSchedule, DESchedule, DiffCRSchedule
from models.training.scene_finetune import (
    GENERIC_CLOUD,
    AdaptSettings,
    Scene,
    adapt_network,
    clear_crop_origins,
    clear_fraction,
    cloud_shape,
    cloud_spectra,
)

TINY = DBCRConfig(widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 2))
CARD = ModelCard(name="tiny", algorithm="dbcr", config=TINY.to_dict(), schedule=BridgeSchedule("linear"))


def _scene(cloudy_rows=40, size=96):
    rng = np.random.default_rng(0)
    optical = rng.random((13, size, size), np.float32) * 0.1
    probability = np.zeros((size, size), np.float32)
    probability[:cloudy_rows] = 0.9
    optical[:, :cloudy_rows] = 0.5  # bright cloud pixels
    mask = probability > 0.4
    return Scene(optical, rng.random((2, size, size), np.float32), probability, mask, np.ones_like(mask))


def test_clear_crops_avoid_the_clouds():
    scene = _scene()
    origins = clear_crop_origins(scene, 32)
    assert origins and all(row >= 40 for row, _ in origins)
    assert clear_fraction(scene) == pytest.approx(1 - 40 / 96)


def test_spectra_come_from_the_scenes_clouds_or_a_generic_cloud():
    assert np.allclose(cloud_spectra(_scene()), 0.5)
    assert np.array_equal(cloud_spectra(_scene(cloudy_rows=0)), GENERIC_CLOUD[None])


def test_cloud_shapes_are_opacity_fields():
    shape = cloud_shape(_scene(cloudy_rows=48), 32, random.Random(0))
    assert shape.shape == (32, 32) and 0 <= shape.min() and shape.max() <= 1 and shape.max() > 0.5


def test_adaptation_tunes_a_copy_and_leaves_the_original():
    network = DBCRNet(TINY)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    steps = []
    tuned = adapt_network(
        network, CARD, _scene(), AdaptSettings(steps=2, batch=2, crop=32), progress=lambda d, t: steps.append(d)
    )
    assert steps == [1, 2] and not tuned.training
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in tuned.state_dict().items())


def test_a_scene_without_clear_area_is_refused():
    with pytest.raises(ValueError, match="no clear"):
        adapt_network(DBCRNet(TINY), CARD, _scene(cloudy_rows=96), AdaptSettings(steps=1, crop=32))


def test_diffcr_adapts_with_its_own_objective():
    config = DiffCRConfig(
        bands=13, dates=1, sar_bands=2, width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), emb_dim=16, time_dim=32
    )
    card = ModelCard(name="d", algorithm="diffcr", config={}, schedule=DiffCRSchedule("sigmoid", 1000))
    network = DiffCRNet(config)
    tuned = adapt_network(network, card, _scene(), AdaptSettings(steps=1, batch=2, crop=32))
    assert any(not torch.equal(a, b) for a, b in zip(network.state_dict().values(), tuned.state_dict().values()))


def test_de_needs_its_reference_to_adapt():
    card = ModelCard(name="d", algorithm="de", config={}, schedule=DESchedule("adm-linear", 1000))
    with pytest.raises(ValueError, match="reference"):
        adapt_network(torch.nn.Conv2d(3, 3, 1), card, _scene(), AdaptSettings(steps=1, crop=32))


def test_rgb_scenes_without_clouds_of_their_own_use_their_brightest_values():
    scene = _scene(cloudy_rows=0)
    rgb = Scene(scene.optical[:3], None, scene.probability, scene.mask, scene.valid)
    spectra = cloud_spectra(rgb)
    assert spectra.shape == (1, 3) and np.all(spectra >= np.percentile(rgb.optical, 99, axis=(1, 2)))


def test_the_soft_brightness_probability_matches_the_mask_at_one_half():
    rgb = np.random.default_rng(0).random((3, 32, 32), np.float32)
    rgb[:, :8] = 0.9
    probability = brightness_cloud_probability(rgb)
    assert np.array_equal(probability > 0.5, brightness_cloud_mask(rgb))
