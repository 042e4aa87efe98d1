"""Scene adaptation (``--adapt N``): read the user's scene, fine-tune the model on it, then run as usual.

DB-CR, DiffCR and DE all adapt, each with its own training objective; DE's reference network stays frozen, as in
DE's training. RGB scenes (DE's 8-bit imagery) have no s2cloudless: the brightness rule finds their clouds.

Only a bounded window of the scene is read (:data:`MAX_SCENE_SIDE`, centred), so adaptation costs the same on a
whole Sentinel-2 tile as on a small clip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rasterio.windows import Window
from torch import nn

from backend.errors import BadInputError, CancelledError
from backend.job import Job, algorithm_label
from backend.pass_outputs import KnownClouds
from backend.raster_io import OpticalSource
from backend.reporter import Reporter
from backend.sar import SarSource
from models.card import RGB_BANDS, ModelCard, save_weights
from models.training.scene_finetune import STEPS, AdaptSettings, Scene, adapt_network, clear_fraction

MAX_SCENE_SIDE = 1024
# Crops divide by every network's total downsampling (DB-CR, DiffCR and DE lite: 8 or 16).
CROP_MULTIPLE = 32


class NothingToLearnError(BadInputError):
    """The scene has no clear area large enough to fine-tune on."""


def centre_window(height: int, width: int, side: int = MAX_SCENE_SIDE) -> Window:
    """The central window of at most side x side pixels."""
    rows, cols = min(height, side), min(width, side)
    return Window((width - cols) // 2, (height - rows) // 2, cols, rows)


def read_scene(job: Job, card: ModelCard) -> tuple[Scene, Window]:
    """The scene's optical and SAR arrays and its cloud probability and mask, and the window they were read from."""
    label = algorithm_label(card.algorithm)
    with OpticalSource(job.optical, card.optical_bands, card.optical_scale, job.l2a_offset, label, card.name) as source:
        window = centre_window(source.grid.height, source.grid.width)
        optical, valid = source.read(window)
        sar = None
        if card.sar_bands and job.sar:
            with SarSource(
                job.sar, source.grid, card.sar_bands, card.sar_db_ranges, job.sar_scale, job.sar_bands, label
            ) as radar:
                sar, _ = radar.read(window)
    probability, mask = scene_clouds(optical, card, job.cloud_threshold)
    return Scene(optical, sar, probability, mask & valid, valid), window


def scene_clouds(optical: np.ndarray, card: ModelCard, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Cloud probability and mask: s2cloudless where the bands allow, else the brightness rule for RGB.

    Raises:
        BadInputError: the model's bands allow neither.
    """
    from models.cloudmask import image_clouds, supports_s2cloudless

    if supports_s2cloudless(card.optical_bands) or tuple(card.optical_bands[:3]) == RGB_BANDS:
        return image_clouds(optical, card.optical_bands, threshold)
    raise BadInputError(f"Cannot find the clouds of this scene: {card.name}'s bands are neither Sentinel-2's nor RGB")


def adapt_to_scene(
    job: Job,
    network: nn.Module,
    card: ModelCard,
    reporter: Reporter,
    should_stop: Callable[[], bool],
    reference: nn.Module | None = None,
    found_clouds: Callable[[KnownClouds], None] | None = None,
) -> nn.Module:
    """Fine-tune ``network`` on the job's scene for ``job.adapt`` steps; save it if the job asks.

    ``found_clouds`` receives the clouds found in the scene, so that the run reuses them instead of finding them
    again.

    Raises:
        BadInputError: the method cannot adapt.
        NothingToLearnError: the scene has no clear area to learn from.
        CancelledError: the user cancelled during adaptation.
    """
    if card.algorithm not in STEPS:
        raise BadInputError(f"Scene adaptation is not available for {algorithm_label(card.algorithm)} models")
    scene, window = read_scene(job, card)
    if found_clouds is not None:
        found_clouds(KnownClouds(window, scene.mask))
    share = clear_fraction(scene)
    reporter.log("info", f"Adapting {card.name} to the scene: {100 * share:.0f} % clear, {job.adapt} steps")
    if share < 0.05:
        reporter.log("warning", "Less than 5 % of the scene is clear: adaptation has little to learn from")

    def progress(done: int, total: int) -> None:
        reporter.emit("progress", done=done, total=total, phase="adapt")

    settings = fitted(AdaptSettings(steps=job.adapt, seed=job.seed), scene)
    try:
        tuned = adapt_network(network, card, scene, settings, reference, progress, should_stop)
    except ValueError as error:
        raise NothingToLearnError(f"Cannot adapt to this scene: {error}; run without adaptation") from error
    if should_stop():
        raise CancelledError()
    if job.save_adapted:
        save_adapted(tuned, card, job, share)
    return tuned


def fitted(settings: AdaptSettings, scene: Scene) -> AdaptSettings:
    """The recipe with its crop shrunk to fit a small scene (a multiple of 32 px, at least 32)."""
    side = min(scene.mask.shape) // CROP_MULTIPLE * CROP_MULTIPLE
    return dataclasses.replace(settings, crop=max(CROP_MULTIPLE, min(settings.crop, side)))


def save_adapted(network: nn.Module, card: ModelCard, job: Job, clear_share: float) -> None:
    """Keep the adapted weights as a new model, its card saying what it was adapted to."""
    path = Path(job.save_adapted or "")
    training = dict(card.training)
    training["adapted_to_scene"] = {"optical": job.optical, "steps": job.adapt, "clear_share": round(clear_share, 3)}
    adapted = card.replace(name=path.stem, training=training, description=f"{card.name} adapted to {job.optical}")
    save_weights(path, network.state_dict(), adapted)
