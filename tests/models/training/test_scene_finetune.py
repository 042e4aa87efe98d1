import dataclasses
import random

import numpy as np
import pytest
import torch

from models.card import ModelCard
from models.cloud_fill import local_fill
from models.networks.dbcr import DBCRConfig, DBCRNet
from models.networks.diffcr import DiffCRConfig, DiffCRNet
from models.sampling.schedule_configs import BridgeSchedule, DESchedule, DiffCRSchedule
from models.training import scene_finetune
from models.training.scene_finetune import (
    GENERIC_CLOUD,
    AdaptSettings,
    NotEnoughClearGround,
    Scene,
    adapt_network,
    clear_fraction,
    cloud_shape,
    cloud_spectra,
    fine_tune,
    split_origins,
    usable_origins,
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


def test_usable_crops_are_at_least_as_clear_as_asked():
    scene = _scene()
    first_row = lambda min_clear: min(row for row, _ in usable_origins(scene, 32, min_clear))  # noqa: E731
    assert first_row(0.25) == 16  # rows 16-47: 24 of the 32 cloud
    assert first_row(0.5) == 32  # rows 32-63: 8 cloud
    assert all(row >= 40 for row, _ in usable_origins(scene, 32, 1.0))
    assert clear_fraction(scene) == pytest.approx(1 - 40 / 96)


def test_spectra_come_from_the_scenes_clouds_or_a_generic_cloud():
    assert np.allclose(cloud_spectra(_scene()), 0.5)
    assert np.array_equal(cloud_spectra(_scene(cloudy_rows=0)), GENERIC_CLOUD[None])


def test_cloud_shapes_are_opacity_fields():
    shape = cloud_shape(_scene(cloudy_rows=48), 32, random.Random(0))
    assert shape.shape == (32, 32) and 0 <= shape.min() and shape.max() <= 1 and shape.max() > 0.5


SMALL = AdaptSettings(steps=2, batch=2, crop=32, check_crop=32)


def test_adaptation_tunes_a_copy_and_leaves_the_original():
    network = DBCRNet(TINY)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    steps = []
    result = adapt_network(network, CARD, _scene(), SMALL, progress=lambda d, t: steps.append(d))
    assert steps == [1, 2] and not result.network.training
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())
    assert np.isfinite(result.before_db) and np.isfinite(result.after_db)
    assert result.adapted == (result.after_db > result.before_db)
    assert (result.network is network) != result.adapted
    tuned = fine_tune(network, CARD, _scene(), split_origins(_scene(), SMALL).fit, SMALL)
    assert any(not torch.equal(before[k], v) for k, v in tuned.state_dict().items())


def test_a_scene_with_less_than_a_tenth_clear_is_refused_with_a_sentence():
    with pytest.raises(NotEnoughClearGround, match=r"only 0 % of the scene is clear ground.*at least 10 %"):
        adapt_network(DBCRNet(TINY), CARD, _scene(cloudy_rows=96), SMALL)
    with pytest.raises(NotEnoughClearGround, match="only 6 %"):
        adapt_network(DBCRNet(TINY), CARD, _scene(cloudy_rows=90), SMALL)


def _scattered_scene(clear_share=0.3, size=160, cell=8):
    """Clouds in cell x cell blocks scattered over the whole scene, ``clear_share`` of the blocks clear."""
    rng = np.random.default_rng(1)
    cells = rng.random((size // cell, size // cell))
    cloudy = np.kron(cells > np.quantile(cells, clear_share), np.ones((cell, cell))).astype(bool)
    optical = rng.random((13, size, size), np.float32) * 0.1
    optical[:, cloudy] = 0.45 + 0.05 * rng.random((13, int(cloudy.sum())), np.float32)
    probability = np.where(cloudy, 0.9, 0.05).astype(np.float32)
    return Scene(optical, rng.random((2, size, size), np.float32), probability, cloudy, np.ones_like(cloudy))


def test_a_scene_with_scattered_clouds_and_no_clear_square_adapts():
    scene = _scattered_scene()
    assert clear_fraction(scene) == pytest.approx(0.3, abs=0.02)
    assert not usable_origins(scene, SMALL.crop, 1 - 0.02)  # the old rule: no window at most 2 % cloud
    result = adapt_network(DBCRNet(TINY), CARD, scene, SMALL)
    assert np.isfinite(result.before_db) and np.isfinite(result.after_db)


def test_the_real_clouds_of_a_training_crop_never_reach_the_target():
    scene = _scene()  # rows 0-39 are real cloud, 0.5 bright
    origin, side = (24, 0), 32  # rows 24-39 of the crop's 32 are cloud
    crops = scene_finetune.simulated_crops(scene, [origin], side, cloud_spectra(scene), random.Random(0), True)
    crop = torch.from_numpy(scene.optical[None, :, 24:56, :32])
    real = torch.from_numpy(scene.mask[None, None, 24:56, :32])
    assert real[..., :16, :].all() and not real[..., 16:, :].any()
    assert torch.equal(crops.clear, local_fill(crop, real.float()))
    assert torch.equal(crops.clear[..., 16:, :], crop[..., 16:, :])  # clear ground bit for bit
    assert crops.clear[..., :16, :].max() < 0.2  # the fill is ground, not the 0.5 cloud
    hidden = crops.opacity[0, 0] > 0
    cloudy_where_not_simulated = crops.cloudy[0][:, ~hidden]
    assert torch.allclose(cloudy_where_not_simulated, crops.clear[0][:, ~hidden])  # the input sees the fill too
    clear, _, _ = scene_finetune.scene_batch(scene, [origin], cloud_spectra(scene), SMALL, random.Random(0))
    assert torch.equal(clear, local_fill(crop, real.float()).expand_as(clear))


def _covered(origins, side, shape):
    covered = np.zeros(shape, bool)
    for row, col in origins:
        covered[row : row + side, col : col + side] = True
    return covered


@pytest.mark.parametrize("scene", [_scattered_scene(), _scene(size=160)], ids=["scattered", "cloudy-top"])
def test_held_back_crops_share_no_pixel_with_the_training_crops(scene):
    settings = AdaptSettings(crop=64, check_crop=32)
    split = split_origins(scene, settings)
    assert split.fit and 1 <= len(split.held_back) <= scene_finetune.HELD_BACK_CROPS
    fit = _covered(split.fit, settings.crop, scene.mask.shape)
    held = _covered(split.held_back, settings.check_crop, scene.mask.shape)
    assert not (fit & held).any()
    threshold = scene_finetune.crop_clear_threshold(scene)
    assert set(split.held_back) <= set(usable_origins(scene, settings.check_crop, threshold))
    assert len(split.fit) >= scene_finetune.MIN_FIT_SHARE * len(usable_origins(scene, settings.crop, threshold))


def test_a_scene_too_small_to_hold_back_ground_is_refused():
    with pytest.raises(NotEnoughClearGround, match="check"):
        split_origins(_scene(cloudy_rows=0, size=32), AdaptSettings(crop=32, check_crop=32))


def test_a_tuned_network_worse_on_held_back_ground_is_not_used(monkeypatch, ruinous_step):
    monkeypatch.setitem(scene_finetune.STEPS, "dbcr", ruinous_step)
    network = DBCRNet(TINY)
    result = adapt_network(network, CARD, _scene(), SMALL)
    assert not result.adapted and result.network is network
    assert result.after_db < result.before_db


def test_a_stopped_adaptation_is_unchecked_and_keeps_the_original():
    network = DBCRNet(TINY)
    result = adapt_network(network, CARD, _scene(), SMALL, should_stop=lambda: True)
    assert result.network is network and not result.adapted and np.isnan(result.before_db)


def test_diffcr_adapts_with_its_own_objective():
    config = DiffCRConfig(
        bands=13, dates=1, sar_bands=2, width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), emb_dim=16, time_dim=32
    )
    card = ModelCard(
        name="d",
        algorithm="diffcr",
        config=dataclasses.asdict(config),
        default_nfe=2,
        schedule=DiffCRSchedule("sigmoid", 1000),
    )
    network = DiffCRNet(config)
    settings = AdaptSettings(steps=1, batch=2, crop=32, check_crop=32)
    tuned = fine_tune(network, card, _scene(), split_origins(_scene(), settings).fit, settings)
    assert any(not torch.equal(a, b) for a, b in zip(network.state_dict().values(), tuned.state_dict().values()))
    result = adapt_network(network, card, _scene(), settings)  # the check runs DiffCR's own sampler
    assert np.isfinite(result.before_db) and np.isfinite(result.after_db)


def test_de_needs_its_reference_to_adapt():
    card = ModelCard(name="d", algorithm="de", config={}, schedule=DESchedule("adm-linear", 1000))
    with pytest.raises(ValueError, match="reference"):
        adapt_network(torch.nn.Conv2d(3, 3, 1), card, _scene(), SMALL)


def test_rgb_scenes_without_clouds_of_their_own_use_their_brightest_values():
    scene = _scene(cloudy_rows=0)
    rgb = Scene(scene.optical[:3], None, scene.probability, scene.mask, scene.valid)
    spectra = cloud_spectra(rgb)
    assert spectra.shape == (1, 3) and np.all(spectra >= np.percentile(rgb.optical, 99, axis=(1, 2)))
