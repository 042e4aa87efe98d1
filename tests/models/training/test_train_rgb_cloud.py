"""Training the RGB cloud detector: labels from a pair's difference, clear images as cloud-free examples, runs."""

import numpy as np
import torch

from models.networks.rgb_cloud import RgbCloudConfig
from models.registry import load_model
from models.training.loop_utils import save_model
from models.training.rice_pairs import Pairs
from models.training.train_rgb_cloud import (
    RgbCloudSettings,
    augmented,
    cloud_labels,
    labelled_images,
    rgb_cloud_card,
    train_rgb_cloud,
    validation_metrics,
)

TINY = RgbCloudConfig(width=4, dilations=(1,), downsample=2)
SETTINGS = RgbCloudSettings(steps=3, batch=2, eval_every=1)


def _pairs(count=4, size=32):
    """Pairs whose cloudy image has a white square over the clear ground's upper-left quarter."""
    rng = np.random.default_rng(0)
    clear = rng.integers(40, 80, (count, 3, size, size), dtype=np.uint8)
    cloudy = clear.copy()
    cloudy[:, :, : size // 2, : size // 2] = 240
    return Pairs(cloudy, clear, tuple(str(index) for index in range(count)))


def test_labels_mark_where_the_pair_differs_and_not_a_single_changed_pixel():
    pairs = _pairs(count=1)
    cloudy = pairs.cloudy.copy()
    cloudy[0, :, 28, 28] = 255  # one pixel changed: smoothed away
    labels = cloud_labels(cloudy, pairs.clear, threshold=0.05, sigma=2.0)
    assert labels.shape == (1, 32, 32) and labels.dtype == np.float32
    assert labels[0, :12, :12].all() and not labels[0, 20:, 20:].any()


def test_every_clear_image_is_a_cloud_free_example():
    pairs = _pairs(count=3)
    images, labels = labelled_images(pairs, SETTINGS)
    assert images.shape == (6, 3, 32, 32) and np.array_equal(images[3:], pairs.clear)
    assert labels[:3].any() and not labels[3:].any()


def test_images_and_labels_turn_and_flip_together():
    images = torch.arange(16.0).view(1, 1, 4, 4).repeat(1, 3, 1, 1)
    labels = torch.arange(16.0).view(1, 1, 4, 4)
    turned, turned_labels = augmented(images, labels, 1, True)
    assert torch.equal(turned[:, :1], turned_labels) and not torch.equal(turned_labels, labels)


def test_validation_counts_false_alarms_on_clear_images():
    class EverythingIsCloud(torch.nn.Module):
        def forward(self, rgb):
            return torch.ones_like(rgb[:, :1])

    metrics = validation_metrics(EverythingIsCloud(), {"rice2": labelled_images(_pairs(), SETTINGS)})
    assert metrics["clear_flagged_rice2"] == 1.0
    assert metrics["score"] == metrics["iou_rice2"] and 0 < metrics["score"] < 0.2  # a quarter of half the pixels


def test_a_run_keeps_its_best_and_writes_a_loadable_detector(tmp_path):
    lines = []
    network, metrics, seconds = train_rgb_cloud(
        TINY, SETTINGS, _pairs(), {"rice2": _pairs(count=2)}, tmp_path / "run", lines.append
    )
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "checkpoint.pt").exists()
    assert len(lines) == 4 and 0 <= metrics["step"] <= 3 and seconds >= 0  # step 0 and each of the 3 steps
    out = tmp_path / "rgb-cloud-tiny.safetensors"
    save_model(out, network, rgb_cloud_card("rgb-cloud-tiny", TINY, SETTINGS, 4, metrics, seconds))
    loaded, card = load_model(str(out))
    assert card.algorithm == "rgb-cloud" and card.optical_scale == 255.0
    assert loaded(torch.rand(1, 3, 16, 16)).shape == (1, 1, 16, 16)
