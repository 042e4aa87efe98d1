"""Learn from the user's own scene: fine-tune a DB-CR, DiffCR or DE network on the scene before running it.

s2cloudless (or, for RGB images, a brightness rule) splits the scene into clear and cloudy pixels. Clouds are
pasted over clear crops with shapes taken from the scene's own cloud-probability map (elsewhere in the scene) and
spectra from its own cloudy pixels, so the network practises on exactly this scene's surfaces, sensor state and
cloud type; the scene's S1 comes along. Each method fine-tunes with its own training objective (the trainers'
step functions), so the adapted network is still the network its sampler expects.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from models.card import SAR_MISSING, ModelCard, card_schedule
from models.sampling.schedule_configs import BridgeSchedule, DESchedule, DiffCRSchedule

# A crop counts as clear when at most this share of it is cloud in the scene's mask.
MAX_CLOUD_IN_CLEAR_CROP = 0.02
# Fewer cloudy pixels than this and the scene has no cloud of its own to copy: use a generic spectrum.
MIN_CLOUD_PIXELS = 200
# A typical L1C cumulus spectrum (eo-learn reference scene means), for scenes without clouds of their own.
GENERIC_CLOUD = np.array(
    [0.32, 0.31, 0.28, 0.28, 0.30, 0.37, 0.41, 0.40, 0.44, 0.14, 0.002, 0.32, 0.26], dtype=np.float32
)


@dataclass(frozen=True)
class Scene:
    """The scene as arrays.

    Attributes:
        optical: (C, H, W) reflectance in the model's band order.
        sar: (S, H, W) in [0, 1], or None.
        probability: (H, W) s2cloudless cloud probability.
        mask: (H, W) True where cloudy.
        valid: (H, W) True where the optical raster has data.
    """

    optical: np.ndarray
    sar: np.ndarray | None
    probability: np.ndarray
    mask: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class AdaptSettings:
    """The fine-tuning recipe: short and gentle, so the network keeps what it learnt before."""

    steps: int = 50
    batch: int = 4
    crop: int = 96
    lr: float = 5e-5
    seed: int = 0
    t_end_share: float = 0.5


def clear_fraction(scene: Scene) -> float:
    """Share of valid pixels that are clear."""
    valid = scene.valid.sum()
    return float((scene.valid & ~scene.mask).sum() / valid) if valid else 0.0


def clear_crop_origins(scene: Scene, crop: int, limit: int = 400, stride: int = 16) -> list[tuple[int, int]]:
    """Top-left corners of crop x crop windows that are valid and (nearly) cloud-free."""
    height, width = scene.mask.shape
    origins = []
    for row in range(0, max(1, height - crop + 1), stride):
        for col in range(0, max(1, width - crop + 1), stride):
            window = np.s_[row : row + crop, col : col + crop]
            if scene.valid[window].all() and scene.mask[window].mean() <= MAX_CLOUD_IN_CLEAR_CROP:
                origins.append((row, col))
    random.Random(0).shuffle(origins)
    return origins[:limit]


def cloud_spectra(scene: Scene, limit: int = 2000) -> np.ndarray:
    """(K, C) spectra of the scene's brightest cloudy pixels, or a generic cloud when it has too few."""
    cloudy = scene.mask & scene.valid & (scene.probability > 0.6)
    if cloudy.sum() >= MIN_CLOUD_PIXELS:
        pixels = scene.optical[:, cloudy].T
        return pixels[np.random.default_rng(0).permutation(len(pixels))[:limit]]
    if scene.optical.shape[0] == len(GENERIC_CLOUD):
        return GENERIC_CLOUD[None]
    # Other sensors (8-bit RGB): the scene's own brightest values stand in for a thick cloud's.
    return np.nanpercentile(scene.optical, 99.5, axis=(1, 2))[None].astype(np.float32)


def cloud_shape(scene: Scene, crop: int, rng: random.Random) -> np.ndarray:
    """A crop x crop opacity field (0-1) cut from the scene's cloud probability, or a soft blob if it has none."""
    height, width = scene.probability.shape
    if scene.mask.sum() >= MIN_CLOUD_PIXELS and height >= crop and width >= crop:
        for _ in range(20):
            row, col = rng.randrange(height - crop + 1), rng.randrange(width - crop + 1)
            field = scene.probability[row : row + crop, col : col + crop]
            if 0.1 < (field > 0.4).mean() < 0.9:
                return np.clip((field - 0.2) / 0.6, 0, 1).astype(np.float32)
    yy, xx = np.mgrid[:crop, :crop]
    cy, cx, radius = rng.uniform(0, crop), rng.uniform(0, crop), rng.uniform(crop / 6, crop / 2)
    return np.clip(1.5 - np.hypot(yy - cy, xx - cx) / radius, 0, 1).astype(np.float32)


def scene_batch(
    scene: Scene, origins: list[tuple[int, int]], spectra: np.ndarray, settings: AdaptSettings, rng: random.Random
) -> tuple[Tensor, Tensor, Tensor]:
    """Clear crops of the scene, the same crops under the scene's own clouds, and their SAR."""
    clear, cloudy, sar = [], [], []
    for _ in range(settings.batch):
        row, col = rng.choice(origins)
        window = np.s_[..., row : row + settings.crop, col : col + settings.crop]
        image = scene.optical[window]
        alpha = cloud_shape(scene, settings.crop, rng)[None]
        spectrum = spectra[rng.randrange(len(spectra))][:, None, None] * rng.uniform(0.8, 1.1)
        clear.append(image)
        cloudy.append(image * (1 - alpha) + spectrum * alpha)
        radar = scene.sar[window] if scene.sar is not None else np.full((2, settings.crop, settings.crop), SAR_MISSING)
        sar.append(radar.astype(np.float32))
    as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays).astype(np.float32))  # noqa: E731
    return as_tensor(clear), as_tensor(cloudy).clamp(0, 1), as_tensor(sar)


# (clear, cloudy, sar) -> loss: one optimiser step of a method's own training objective.
Step = Callable[[Tensor, Tensor, Tensor], float]


@dataclass(frozen=True)
class Tuning:
    """What a method's step is built from.

    The network being tuned, its card and optimiser, the recipe, the random source, and DE's frozen reference
    network (None for the others).
    """

    network: nn.Module
    card: ModelCard
    optimizer: torch.optim.Optimizer
    settings: AdaptSettings
    rng: random.Random
    reference: nn.Module | None


def dbcr_step(tuning: Tuning) -> Step:
    """DB-CR's bridge step (``train_dbcr.training_step``) on the card's schedule."""
    from models.training.train_dbcr import training_step

    alphas = card_schedule(tuning.card, BridgeSchedule).alphas().float()
    return lambda clear, cloudy, sar: training_step(
        tuning.network, tuning.optimizer, alphas, clear, cloudy, sar, tuning.settings.t_end_share, tuning.rng
    )


def diffcr_step(tuning: Tuning) -> Step:
    """DiffCR's x0-prediction step (``train_diffcr.training_step``) on the card's noise schedule."""
    from models.networks.diffcr import DiffCRNet
    from models.training.train_diffcr import training_step

    network = tuning.network
    assert isinstance(network, DiffCRNet)
    gammas = card_alphas(tuning.card).float()
    return lambda clear, cloudy, sar: training_step(network, tuning.optimizer, gammas, clear, cloudy, sar)


def de_step(tuning: Tuning) -> Step:
    """DE's official loss step (``train_de.training_step``) over its frozen reference network."""
    from models.networks.de import DENet
    from models.training.train_de import training_step

    network = tuning.network
    if tuning.reference is None:
        raise ValueError("DE adapts over its reference network, which was not given")
    assert isinstance(network, DENet)
    frozen = tuning.reference.eval().requires_grad_(False)
    alphas = card_alphas(tuning.card)
    return lambda clear, cloudy, sar: training_step(network, frozen, tuning.optimizer, alphas, cloudy, clear)


def card_alphas(card: ModelCard) -> Tensor:
    """ᾱ of the noise schedule the card's diffusion model was trained on (float64), as its restorer reads it."""
    if card.algorithm == "de":
        return card_schedule(card, DESchedule).alphas_cumprod()
    return card_schedule(card, DiffCRSchedule).alphas_cumprod()


STEPS: dict[str, Callable[[Tuning], Step]] = {"dbcr": dbcr_step, "diffcr": diffcr_step, "de": de_step}


def adapt_network(
    network: nn.Module,
    card: ModelCard,
    scene: Scene,
    settings: AdaptSettings,
    reference: nn.Module | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> nn.Module:
    """Fine-tune a copy of ``network`` on the scene with its method's own training step; the original is kept.

    Args:
        network: a DB-CR, DiffCR or DE network (torch, on the CPU).
        card: its model card (algorithm and schedule).
        scene: the scene to learn from.
        settings: the fine-tuning recipe.
        reference: DE only: the reference network, kept frozen as in DE's training.
        progress: called with (steps done, steps) after each step.
        should_stop: polled before each step; True ends the fine-tuning early.

    Raises:
        ValueError: the method cannot adapt, or the scene has no clear window of the crop size to learn from.
    """
    if card.algorithm not in STEPS:
        raise ValueError(f"{card.algorithm} models cannot be fine-tuned on a scene")
    origins = clear_crop_origins(scene, settings.crop)
    if not origins:
        raise ValueError(f"the scene has no clear {settings.crop} x {settings.crop} px area to learn from")
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    spectra = cloud_spectra(scene)
    tuned = copy.deepcopy(network).train()
    optimizer = torch.optim.Adam(tuned.parameters(), lr=settings.lr)
    step = STEPS[card.algorithm](Tuning(tuned, card, optimizer, settings, rng, reference))
    for done in range(settings.steps):
        if should_stop is not None and should_stop():
            break
        step(*scene_batch(scene, origins, spectra, settings, rng))
        if progress is not None:
            progress(done + 1, settings.steps)
    return tuned.eval()
