"""Train the RGB cloud and haze detector (``models.networks.rgb_cloud``) on RICE2 pairs.

RICE2 has no cloud masks, so the labels come from each pair: a pixel is cloud where the cloudy image differs from
the clear date, the absolute difference averaged over R, G and B and smoothed, above ``label_threshold``. That marks
clouds, haze and their shadows, and also ground that changed between the two dates. Each pair's clear image is a
second example, labelled cloud-free everywhere: the detector learns that bright sand and pale fields are not cloud,
and a clear scene comes back with (almost) nothing flagged.

What the labels are for: keep-clear keeps the input outside the mask, so a pixel the mask misses keeps its cloud or
haze, and a pixel it flags is restored by the network. On RICE2's held-out pairs, keep-clear on DE's output with
these labels scored about as well as restoring every pixel, and well above the brightness rule (see
docs/training/rgb-cloud-lite/README.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import Tensor, nn

from models.card import RGB_BANDS, ModelCard
from models.networks.rgb_cloud import RgbCloudConfig, RgbCloudNet
from models.training.loop_utils import BEST_FILE, Log, load_best, new_state, run_loop
from models.training.rice_pairs import HOLD_OUT_EVERY, Pairs

DATA = (
    "RICE2 (Lin et al. 2019: Landsat 8 RGB, 8-bit; 256² pairs and 512² pairs cut into 256² quarters): each cloudy "
    "image with labels from its pair's difference, and each clear image labelled cloud-free; every {every}th pair "
    "of each set in id order held out for validation"
)


@dataclass(frozen=True)
class RgbCloudSettings:
    """The detector's recipe, stored in its card."""

    steps: int = 1500
    batch: int = 16
    lr: float = 2e-3
    seed: int = 0
    ema: float = 0.99
    eval_every: int = 100
    label_threshold: float = 0.05  # mean |cloudy - clear| over R, G, B (reflectance 0-1) that counts as cloud
    label_sigma: float = 2.0  # px: smooths single changed pixels (noise, a car) out of the labels


def cloud_labels(cloudy: np.ndarray, clear: np.ndarray, threshold: float, sigma: float) -> np.ndarray:
    """(N, 3, H, W) uint8 pairs -> (N, H, W) float32 labels, 1 where the smoothed mean |difference| > threshold."""
    difference = np.abs(cloudy.astype(np.float32) - clear.astype(np.float32)).mean(axis=1) / 255.0
    smoothed = gaussian_filter(difference, (0, sigma, sigma))
    return (smoothed > threshold).astype(np.float32)


def labelled_images(pairs: Pairs, settings: RgbCloudSettings) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's cloudy image with its labels, then its clear image labelled cloud-free: (2N, 3, H, W), (2N, H, W)."""
    labels = cloud_labels(pairs.cloudy, pairs.clear, settings.label_threshold, settings.label_sigma)
    return np.concatenate([pairs.cloudy, pairs.clear]), np.concatenate([labels, np.zeros_like(labels)])


def augmented(images: Tensor, labels: Tensor, turns: int, flip: bool) -> tuple[Tensor, Tensor]:
    """The same quarter turns and horizontal flip on (B, C, H, W) images and (B, 1, H, W) labels."""
    images, labels = torch.rot90(images, turns, (2, 3)), torch.rot90(labels, turns, (2, 3))
    return (images.flip(3), labels.flip(3)) if flip else (images, labels)


@torch.no_grad()
def validation_metrics(network: nn.Module, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The detector's validation, per set and overall.

    Per set: the IoU of the predicted mask (p > 0.5) with the labels, the mean BCE, and the share of the clear
    images' pixels flagged. ``score`` is the IoU over every set, the clear images' false alarms counted in its union.
    """
    network.eval()
    metrics: dict[str, float] = {}
    totals = np.zeros(3)
    for name, (images, labels) in sets.items():
        counts = np.zeros(3)  # intersection, union, bce sum
        flagged = clear_pixels = 0
        for image, label in zip(images, labels, strict=True):
            logits = network(torch.from_numpy(image[None].astype(np.float32) / 255.0))[0, 0]
            target = torch.from_numpy(label)
            predicted, truth = logits > 0, target > 0
            counts += [(predicted & truth).sum().item(), (predicted | truth).sum().item(),
                       F.binary_cross_entropy_with_logits(logits, target).item()]  # fmt: skip
            if not truth.any():
                flagged += int(predicted.sum().item())
                clear_pixels += predicted.numel()
        metrics[f"iou_{name}"] = counts[0] / max(counts[1], 1)
        metrics[f"bce_{name}"] = counts[2] / len(images)
        metrics[f"clear_flagged_{name}"] = flagged / max(clear_pixels, 1)
        totals += counts
    metrics["score"] = totals[0] / max(totals[1], 1)
    network.train()
    return {key: round(float(value), 4) for key, value in metrics.items()}


def train_rgb_cloud(
    config: RgbCloudConfig,
    settings: RgbCloudSettings,
    train: Pairs,
    validation: dict[str, Pairs],
    run_dir: Path,
    log: Log,
    initial: dict[str, Tensor] | None = None,
) -> tuple[nn.Module, dict[str, float], float]:
    """Train (resuming from ``run_dir``) and return the best validated EMA, its metrics (with ``step``) and the seconds.

    Args:
        config: the detector's architecture.
        settings: the recipe.
        train: the training pairs (each gives a labelled cloudy image and a cloud-free clear one).
        validation: held-out pairs by set name (rice2's 256² pairs, rice2-512's pairs whole).
        run_dir: checkpoint, best EMA and log folder; a run there is resumed.
        log: receives one JSON line per evaluation.
        initial: a state dict to start from (``--init-from``), or None for a fresh network.
    """
    images, labels = labelled_images(train, settings)
    held_out = {suffix: labelled_images(pairs, settings) for suffix, pairs in validation.items()}
    state = new_state(RgbCloudNet(config), settings.lr, settings.steps, settings.seed, initial)

    def step() -> float:
        picks = [state.rng.randrange(len(images)) for _ in range(settings.batch)]
        batch = torch.from_numpy(images[picks].astype(np.float32) / 255.0)
        target = torch.from_numpy(labels[picks])[:, None]
        batch, target = augmented(batch, target, state.rng.randrange(4), state.rng.random() < 0.5)
        loss = F.binary_cross_entropy_with_logits(state.network(batch), target)
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()
        return float(loss.item())

    run_dir.mkdir(parents=True, exist_ok=True)
    best = run_dir / BEST_FILE
    _, seconds = run_loop(
        state, settings.steps, settings.eval_every, settings.ema, step,
        lambda network: validation_metrics(network, held_out), run_dir / "checkpoint.pt", log, best,
    )  # fmt: skip
    best_step, metrics = load_best(best, state.ema)
    return state.ema, {**metrics, "step": best_step}, seconds


def rgb_cloud_card(
    name: str,
    config: RgbCloudConfig,
    settings: RgbCloudSettings,
    pairs: int = 0,
    metrics: dict[str, Any] | None = None,
    seconds: float = 0.0,
) -> ModelCard:
    """The card of a detector trained here."""
    return ModelCard(
        name=name,
        algorithm="rgb-cloud",
        config=config.to_dict(),
        optical_bands=RGB_BANDS,
        sar_bands=(),
        optical_scale=255.0,
        tile_size=256,
        default_nfe=1,
        training={
            "data": DATA.format(every=HOLD_OUT_EVERY),
            "train_pairs": pairs,
            "recipe": asdict(settings),
            "loss": "binary cross-entropy",
            "seconds": round(seconds),
            "device": "cpu",
        },
        metrics={"validation_rice2_held_out": metrics or {}},
        description=f"RGB cloud and haze detector {name}: finds the clouds of RGB imagery, where s2cloudless "
        "cannot run, for keep-clear and the cloud mask output; trained on RICE2 by `python -m backend train "
        "rgb-cloud`.",
    )
