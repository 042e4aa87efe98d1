"""Learn from the user's own scene: fine-tune a DB-CR, DiffCR or DE network on the scene before running it.

s2cloudless (or, for RGB images, the learnt RGB detector) splits the scene into clear and cloudy pixels. Training
crops may hold real clouds (:data:`MIN_CLEAR_IN_CROP`): their real-cloud pixels, which have no known ground, are
filled from the clear ground around them (:func:`models.cloud_fill.local_fill`) in the target and the input alike.
Clouds are then pasted over the crops with shapes taken from the scene's own cloud-probability map (elsewhere in the
scene) and spectra from its own cloudy pixels, so the network practises on exactly this scene's surfaces, sensor
state and cloud type; the scene's S1 comes along. Each method fine-tunes with its own training objective (the
trainers' step functions), so the adapted network is still the network its sampler expects.

Some of the scene's clear ground is held back from the fit (:func:`split_origins`). After the fine-tuning, the
original and the tuned network restore the same held-back crops under the same simulated clouds through their
method's restorer, and the tuned one is used only if it restores the held-back clear ground better
(:class:`AdaptResult`): adaptation never makes a scene worse than the model it started from, by that measure.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from models.card import SAR_MISSING, ModelCard, card_schedule
from models.cloud_fill import local_fill
from models.restorers import make_restorer
from models.sampling.schedule_configs import BridgeSchedule, DESchedule, DiffCRSchedule

# Below this share of clear ground scene-wide there is too little known ground to learn from or to check on.
MIN_CLEAR_SHARE = 0.10
# A training crop must be at least this share clear: its real clouds are filled in (no ground truth there), so a
# crop mostly cloud would teach the network the fill rather than the scene. Scenes cloudier than this take the
# crops at least as clear as the scene itself (:func:`crop_clear_threshold`).
MIN_CLEAR_IN_CROP = 0.5
# Crop windows are looked for on a grid of this step (px).
CROP_STRIDE = 16
# At most this many crops are held back for the check; a small scene holds back fewer.
HELD_BACK_CROPS = 4
# Further crops are held back only while at least this share of the training windows remain to learn from.
MIN_FIT_SHARE = 0.5
# The check restores this many (crop, simulated cloud) samples in one batch, spread over the held-back crops:
# enough for a stable PSNR, few enough that the check costs a small part of the fine-tuning.
HELD_BACK_SAMPLES = 8
# The check scores the pixels the simulated cloud hides more than half of.
UNDER_CLOUD_OPACITY = 0.5
# Fewer cloudy pixels than this and the scene has no cloud of its own to copy: use a generic spectrum.
MIN_CLOUD_PIXELS = 200
# A typical L1C cumulus spectrum (eo-learn reference scene means), for scenes without clouds of their own.
GENERIC_CLOUD = np.array(
    [0.32, 0.31, 0.28, 0.28, 0.30, 0.37, 0.41, 0.40, 0.44, 0.14, 0.002, 0.32, 0.26], dtype=np.float32
)

Origin = tuple[int, int]


class NotEnoughClearGround(ValueError):
    """The scene has too little clear ground to learn from and check on."""


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
    """The fine-tuning recipe: short and gentle, so the network keeps what it learnt before.

    ``crop`` is the training crops' side, ``check_crop`` the held-back crops' (px).
    """

    steps: int = 50
    batch: int = 4
    crop: int = 96
    lr: float = 5e-5
    seed: int = 0
    t_end_share: float = 0.5
    check_crop: int = 64


@dataclass(frozen=True)
class AdaptResult:
    """The network to run, and the held-back check that chose it.

    Attributes:
        network: the tuned copy when ``adapted``, else the original network.
        adapted: whether the tuned copy restored the held-back clear ground better than the original.
        before_db: the original network's PSNR (dB) on the held-back clear ground under the simulated clouds.
        after_db: the tuned copy's, on the same crops and clouds. Both are NaN when the fine-tuning was stopped
            before the check.
    """

    network: nn.Module
    adapted: bool
    before_db: float
    after_db: float


@dataclass(frozen=True)
class CropSplit:
    """Training windows (``crop`` side) and held-back windows (``check_crop`` side) that share no pixel."""

    fit: list[Origin]
    held_back: list[Origin]


def clear_fraction(scene: Scene) -> float:
    """Share of valid pixels that are clear."""
    valid = scene.valid.sum()
    return float((scene.valid & ~scene.mask).sum() / valid) if valid else 0.0


def enough_clear_ground(scene: Scene) -> float:
    """The scene's clear share, if at least :data:`MIN_CLEAR_SHARE`.

    Raises:
        NotEnoughClearGround: less of the scene is clear.
    """
    share = clear_fraction(scene)
    if share < MIN_CLEAR_SHARE:
        raise NotEnoughClearGround(
            f"only {100 * share:.0f} % of the scene is clear ground, and adaptation needs at least "
            f"{100 * MIN_CLEAR_SHARE:.0f} % to learn from"
        )
    return share


def crop_clear_threshold(scene: Scene) -> float:
    """The least clear share of a usable crop: :data:`MIN_CLEAR_IN_CROP`, or the scene's own where it is cloudier.

    A scene with scattered clouds over most of it may have no crop half clear; its clearest crops (those at least
    as clear as the scene) still teach more than the fill, and the held-back check guards the result.
    """
    return min(MIN_CLEAR_IN_CROP, clear_fraction(scene))


def window_sums(values: np.ndarray, side: int) -> np.ndarray:
    """(H - side + 1, W - side + 1): the sum of ``values`` over every side x side window (a summed-area table)."""
    table = np.pad(values.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]


def usable_origins(scene: Scene, side: int, min_clear: float, stride: int = CROP_STRIDE) -> list[Origin]:
    """Top-left corners (on a ``stride`` grid, row by row) of side x side windows all valid and ``min_clear`` clear."""
    height, width = scene.mask.shape
    if height < side or width < side:
        return []
    valid = window_sums(scene.valid, side) == side * side
    clear = window_sums(scene.valid & ~scene.mask, side) >= min_clear * side * side
    rows, cols = np.nonzero((valid & clear)[::stride, ::stride])
    return [(int(row) * stride, int(col) * stride) for row, col in zip(rows, cols)]


def overlapping(origins: np.ndarray, side: int, origin: np.ndarray, other_side: int) -> np.ndarray:
    """(N,) bool: which side x side windows at ``origins`` (N, 2) share a pixel with the one at ``origin``."""
    starts, ends = origins, origins + side
    return np.all((starts < origin + other_side) & (origin < ends), axis=1)


def split_origins(scene: Scene, settings: AdaptSettings) -> CropSplit:
    """Usable training windows and held-back windows, spatially disjoint.

    The held-back crops are spread over the scene: the first is the usable ``check_crop`` window nearest a corner
    of the scene (where it blocks the fewest training windows), each next one the window farthest (Chebyshev
    distance, under which square windows overlap exactly when nearer than a side) from those already held back.
    Every training window that shares a pixel with a held-back crop is dropped, so the check scores ground the
    fine-tuning never saw. Crops are held back, up to :data:`HELD_BACK_CROPS`, while :data:`MIN_FIT_SHARE` of the
    training windows remain (the first crop need only leave one).

    Raises:
        NotEnoughClearGround: no usable training window, or none left beside a held-back crop.
    """
    threshold = crop_clear_threshold(scene)
    crop, check = settings.crop, settings.check_crop
    fit = np.array(usable_origins(scene, crop, threshold), dtype=np.int64).reshape(-1, 2)
    if not len(fit):
        raise NotEnoughClearGround(
            f"the scene has no {crop} x {crop} px area at least {100 * threshold:.0f} % clear to learn from"
        )
    candidates = np.array(usable_origins(scene, check, threshold), dtype=np.int64).reshape(-1, 2)
    height, width = scene.mask.shape
    corners = np.array([[0, 0], [0, width - check], [height - check, 0], [height - check, width - check]])
    to_corner = np.hypot(*(candidates[:, None] - corners[None]).transpose(2, 0, 1)).min(axis=1)
    keep = np.ones(len(fit), bool)
    held: list[int] = []
    for index in np.argsort(to_corner, kind="stable"):
        left = keep & ~overlapping(fit, crop, candidates[index], check)
        if left.any():
            held, keep = [int(index)], left
            break
    if not held:
        raise NotEnoughClearGround("the scene's clear ground is too small to learn from and check on separately")
    nearest = np.abs(candidates - candidates[held[0]]).max(axis=1)
    while len(held) < HELD_BACK_CROPS:
        index = int(np.argmax(nearest))
        if overlapping(candidates[held], check, candidates[index], check).any():
            break  # the farthest window overlaps a held-back crop: all do
        left = keep & ~overlapping(fit, crop, candidates[index], check)
        if left.sum() < MIN_FIT_SHARE * len(fit):
            break
        held.append(index)
        keep = left
        nearest = np.minimum(nearest, np.abs(candidates - candidates[index]).max(axis=1))
    as_origins = lambda rows: [(int(row), int(col)) for row, col in rows]  # noqa: E731
    return CropSplit(as_origins(fit[keep]), as_origins(candidates[held]))


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


@dataclass(frozen=True)
class Crops:
    """Crops of the scene under simulated clouds.

    Attributes:
        clear: (B, C, T, T) the crops' reflectance (the target).
        cloudy: (B, C, T, T) the same under the simulated clouds, clipped to [0, 1].
        sar: (B, S, T, T) their SAR (:data:`SAR_MISSING` where the scene has none).
        opacity: (B, 1, T, T) the simulated clouds' opacity.
        real_clouds: (B, 1, T, T) True where the scene's mask has a real cloud.
        origins: each crop's top-left corner in the scene.
    """

    clear: Tensor
    cloudy: Tensor
    sar: Tensor
    opacity: Tensor
    real_clouds: Tensor
    origins: list[Origin]


def simulated_crops(
    scene: Scene, origins: list[Origin], side: int, spectra: np.ndarray, rng: random.Random, fill_real: bool
) -> Crops:
    """The side x side crops at ``origins``, each under a cloud of the scene's own shapes and spectra.

    With ``fill_real`` the crops' real-cloud pixels are first replaced, in the target and the input alike, by a
    local fill from the clear ground around them: a real cloud has no known ground, and a target showing it would
    teach the network to keep clouds. Without, the real clouds stay as they are (the held-back check keeps them in
    its input, as a user's scene has them, and scores only clear ground).
    """
    images, sars, alphas, spectrums, real = [], [], [], [], []
    for row, col in origins:
        window = np.s_[..., row : row + side, col : col + side]
        images.append(scene.optical[window].astype(np.float32))
        real.append(scene.mask[window][None])
        alphas.append(cloud_shape(scene, side, rng)[None])
        spectrums.append(spectra[rng.randrange(len(spectra))][:, None, None] * rng.uniform(0.8, 1.1))
        radar = scene.sar[window] if scene.sar is not None else np.full((2, side, side), SAR_MISSING)
        sars.append(radar.astype(np.float32))
    as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays).astype(np.float32))  # noqa: E731
    clear, real_clouds, opacity = as_tensor(images), torch.from_numpy(np.stack(real)), as_tensor(alphas)
    if fill_real:
        clear = local_fill(clear, real_clouds.float())
    cloudy = clear * (1 - opacity) + as_tensor(spectrums) * opacity
    return Crops(clear, cloudy.clamp(0, 1), as_tensor(sars), opacity, real_clouds, list(origins))


def scene_batch(
    scene: Scene, origins: list[Origin], spectra: np.ndarray, settings: AdaptSettings, rng: random.Random
) -> tuple[Tensor, Tensor, Tensor]:
    """Crops of the scene (real clouds filled in), the same crops under the scene's own clouds, and their SAR."""
    chosen = [rng.choice(origins) for _ in range(settings.batch)]
    crops = simulated_crops(scene, chosen, settings.crop, spectra, rng, fill_real=True)
    return crops.clear, crops.cloudy, crops.sar


def held_back_crops(scene: Scene, origins: list[Origin], spectra: np.ndarray, settings: AdaptSettings) -> Crops:
    """:data:`HELD_BACK_SAMPLES` held-back crops (each in turn) under fixed clouds, seeded apart from training."""
    rng = random.Random(f"held back {settings.seed}")
    samples = [origins[index % len(origins)] for index in range(HELD_BACK_SAMPLES)]
    return simulated_crops(scene, samples, settings.check_crop, spectra, rng, fill_real=False)


def held_back_psnr(
    network: nn.Module, card: ModelCard, crops: Crops, seed: int, reference: nn.Module | None = None
) -> float:
    """PSNR (dB, peak 1) of the network's restoration on the clear ground under the crops' simulated clouds.

    The method's own restorer at the card's default NFE, as a user runs it; NaN if no such pixel exists.
    """
    restore = make_restorer(network, card, card.default_nfe, seed, reference if card.algorithm == "de" else None)
    restored = restore(crops.cloudy, crops.sar, crops.origins).clamp(0, 1)
    scored = ((crops.opacity > UNDER_CLOUD_OPACITY) & ~crops.real_clouds).float()
    count = scored.sum() * crops.clear.shape[1]
    if count == 0:
        return math.nan
    mse = float(((restored - crops.clear) ** 2 * scored).sum() / count)
    return 10 * math.log10(1 / max(mse, 1e-10))


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
    """DB-CR's bridge step (``train_dbcr.training_step``) on the card's schedule, from the card's bridge start."""
    from models.training.train_dbcr import training_step

    alphas = card_schedule(tuning.card, BridgeSchedule).alphas().float()
    start = tuning.card.bridge_start
    return lambda clear, cloudy, sar: training_step(
        tuning.network,
        tuning.optimizer,
        alphas,
        clear,
        cloudy,
        sar,
        tuning.settings.t_end_share,
        tuning.rng,
        bridge_start=start,
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


def fine_tune(
    network: nn.Module,
    card: ModelCard,
    scene: Scene,
    origins: list[Origin],
    settings: AdaptSettings,
    reference: nn.Module | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> nn.Module:
    """A copy of ``network`` fine-tuned on crops at ``origins`` with its method's own training step."""
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


def adapt_network(
    network: nn.Module,
    card: ModelCard,
    scene: Scene,
    settings: AdaptSettings,
    reference: nn.Module | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AdaptResult:
    """Fine-tune a copy of ``network`` on the scene, and keep it only if it restores held-back clear ground better.

    The original is never changed. The check (:func:`held_back_psnr`) runs both networks on the same held-back
    crops (:func:`split_origins`) under the same seeded clouds.

    Args:
        network: a DB-CR, DiffCR or DE network (torch, on the CPU).
        card: its model card (algorithm, schedule and default NFE).
        scene: the scene to learn from.
        settings: the fine-tuning recipe.
        reference: DE only: the reference network, kept frozen as in DE's training.
        progress: called with (steps done, steps) after each step.
        should_stop: polled before each step; True ends the fine-tuning early, unchecked, with the original.

    Raises:
        NotEnoughClearGround: less than :data:`MIN_CLEAR_SHARE` of the scene is clear, or its clear ground holds
            no crop to learn from beside one to check on.
        ValueError: the method cannot adapt.
    """
    if card.algorithm not in STEPS:
        raise ValueError(f"{card.algorithm} models cannot be fine-tuned on a scene")
    enough_clear_ground(scene)
    split = split_origins(scene, settings)
    tuned = fine_tune(network, card, scene, split.fit, settings, reference, progress, should_stop)
    if should_stop is not None and should_stop():
        return AdaptResult(network, False, math.nan, math.nan)
    crops = held_back_crops(scene, split.held_back, cloud_spectra(scene), settings)
    before = held_back_psnr(network, card, crops, settings.seed, reference)
    after = held_back_psnr(tuned, card, crops, settings.seed, reference)
    better = after > before  # False with a NaN: an unchecked network is not kept
    return AdaptResult(tuned if better else network, better, before, after)
