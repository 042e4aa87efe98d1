"""Scene adaptation (``--adapt N``): read the user's scene, fine-tune the model on it, then run as usual.

DB-CR, DiffCR and DE all adapt, each with its own training objective; DE's reference network stays frozen, as in
DE's training. RGB scenes (DE's 8-bit imagery) have no s2cloudless: the learnt RGB detector finds their clouds.

Only a bounded window of the scene is read (:data:`MAX_SCENE_SIDE`, centred), so adaptation costs the same on a
whole Sentinel-2 tile as on a small clip. Scenes with less than 10 % clear ground are refused. The adapted network
runs only if it restored clear ground held back from the fine-tuning better than the original did; otherwise the
original runs, and the log gives both scores.
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
from backend.pass_outputs import KnownClouds, can_find_clouds
from backend.raster_io import OpticalSource
from backend.reporter import Reporter
from backend.sar import SarSource
from models.card import ModelCard, save_weights
from models.training.scene_finetune import (
    STEPS,
    AdaptResult,
    AdaptSettings,
    Scene,
    adapt_network,
    enough_clear_ground,
)

MAX_SCENE_SIDE = 1024
# Crops divide by every network's total downsampling (DB-CR, DiffCR and DE lite: 8 or 16).
CROP_MULTIPLE = 32


class NothingToLearnError(BadInputError):
    """The scene has too little clear ground to fine-tune on and check the result on."""


def centre_window(height: int, width: int, side: int = MAX_SCENE_SIDE) -> Window:
    """The central window of at most side x side pixels."""
    rows, cols = min(height, side), min(width, side)
    return Window((width - cols) // 2, (height - rows) // 2, cols, rows)


def read_scene(job: Job, card: ModelCard) -> tuple[Scene, Window, bool]:
    """The scene's optical and SAR arrays, cloud probability and mask; the window read; whether it is the raster."""
    label = algorithm_label(card.algorithm)
    with OpticalSource(job.optical, card.optical_bands, card.optical_scale, job.l2a_offset, label, card.name) as source:
        window = centre_window(source.grid.height, source.grid.width)
        whole = (window.height, window.width) == (source.grid.height, source.grid.width)
        optical, valid = source.read(window)
        sar = None
        if card.sar_bands and job.sar:
            with SarSource(
                job.sar, source.grid, card.sar_bands, card.sar_db_ranges, job.sar_scale, job.sar_bands, label
            ) as radar:
                sar, _ = radar.read(window)
    probability, mask = scene_clouds(optical, card, job.cloud_threshold)
    return Scene(optical, sar, probability, mask & valid, valid), window, whole


def scene_clouds(optical: np.ndarray, card: ModelCard, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Cloud probability and mask: s2cloudless where the bands allow, else the learnt RGB detector.

    Raises:
        BadInputError: the model's bands allow neither.
    """
    from models.cloudmask import image_clouds

    if can_find_clouds(card.optical_bands):
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
    """Fine-tune ``network`` on the job's scene for ``job.adapt`` steps; the network to run, tuned or not.

    The tuned network is returned (and saved, if the job asks) only if it restored the scene's held-back clear
    ground better than ``network``; otherwise ``network`` is, and the log says why with both scores. A whole raster
    with no cloud found is not adapted when the job keeps clear ground: nothing of the network's would show.
    ``found_clouds`` receives the clouds found in the scene, so that the run reuses them instead of finding them
    again.

    Raises:
        BadInputError: the method cannot adapt.
        NothingToLearnError: the scene has too little clear ground to learn from (less than 10 %, or no crop).
        CancelledError: the user cancelled during adaptation.
    """
    if card.algorithm not in STEPS:
        raise BadInputError(f"Scene adaptation is not available for {algorithm_label(card.algorithm)} models")
    scene, window, whole = read_scene(job, card)
    if found_clouds is not None:
        found_clouds(KnownClouds(window, scene.mask))
    if job.keep_clear and whole and not scene.mask.any():
        # Keep-clear returns a cloud-free raster as it is, whatever the network: tuning would change nothing.
        reporter.log("info", f"No cloud found in the scene: {card.name} is not adapted; the scene comes back as it is")
        if job.save_adapted:
            reporter.log("warning", f"Not saving adapted weights to {job.save_adapted}: nothing was adapted")
        return network

    def progress(done: int, total: int) -> None:
        reporter.emit("progress", done=done, total=total, phase="adapt")

    settings = fitted(AdaptSettings(steps=job.adapt, seed=job.seed), scene)
    try:
        share = enough_clear_ground(scene)
        reporter.log("info", f"Adapting {card.name} to the scene: {100 * share:.0f} % clear, {job.adapt} steps")
        result = adapt_network(network, card, scene, settings, reference, progress, should_stop)
    except ValueError as error:
        raise NothingToLearnError(f"Cannot adapt to this scene: {error}; run without adaptation") from error
    if should_stop():
        raise CancelledError()
    report_check(result, card, reporter)
    if job.save_adapted:
        if result.adapted:
            save_adapted(result.network, card, job, share)
        else:
            reporter.log("warning", f"Not saving the adapted weights to {job.save_adapted}: {card.name} runs unadapted")
    return result.network


def report_check(result: AdaptResult, card: ModelCard, reporter: Reporter) -> None:
    """Tell the user which network runs, with the held-back scores that chose it."""
    scores = f"{result.before_db:.2f} dB -> {result.after_db:.2f} dB"
    if result.adapted:
        reporter.log("info", f"Adaptation helped on held-back clear ground ({scores}): running the adapted model")
    else:
        reporter.log(
            "warning", f"Adaptation did not help on held-back clear ground ({scores}): running {card.name} as it was"
        )


def fitted(settings: AdaptSettings, scene: Scene) -> AdaptSettings:
    """The recipe with its crops shrunk to fit a small scene (multiples of 32 px, at least 32).

    The training crop is the largest that leaves room beside it, along the scene's shorter side, for a held-back
    crop of at least 32 px; the held-back crop takes the room left, up to its own size.
    """
    side = min(scene.mask.shape)
    crop = (settings.crop // CROP_MULTIPLE) * CROP_MULTIPLE
    while crop > CROP_MULTIPLE and crop + CROP_MULTIPLE > side:
        crop -= CROP_MULTIPLE
    crop = max(CROP_MULTIPLE, crop)
    room = max(CROP_MULTIPLE, (side - crop) // CROP_MULTIPLE * CROP_MULTIPLE)
    return dataclasses.replace(settings, crop=crop, check_crop=min(settings.check_crop, room))


def save_adapted(network: nn.Module, card: ModelCard, job: Job, clear_share: float) -> None:
    """Keep the adapted weights as a new model, its card saying what it was adapted to."""
    path = Path(job.save_adapted or "")
    training = dict(card.training)
    training["adapted_to_scene"] = {"optical": job.optical, "steps": job.adapt, "clear_share": round(clear_share, 3)}
    adapted = card.replace(name=path.stem, training=training, description=f"{card.name} adapted to {job.optical}")
    save_weights(path, network.state_dict(), adapted)
