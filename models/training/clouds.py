"""Simulated clouds, haze and shadows over real clear chips, with spectra taken from real cloudy pixels.

Shapes and shadows come from the ``satellite-cloud-generator`` package (Czerkawski et al. 2023); the cloud's
reflectance per band is drawn from real Sentinel-2 L1C cloud pixels rather than the package's flat white, since
real clouds are darker in the SWIR bands and bright in the cirrus band.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

# Brighter than any clear land in the blue band: a conservative cloud test for the reference scene.
CLOUD_BLUE_THRESHOLD = 0.25
# A pixel whose visible bands (B2-B4) changed by more than this (mean absolute reflectance) is under the cloud.
VISIBLE_CHANGE = 0.02

CloudKind = dict[str, float | tuple[float, float]]

THICK: CloudKind = {
    "min_lvl": 0.0,
    "max_lvl": 1.0,
    "clear_threshold": (0.0, 0.2),
    "locality_degree": (1, 3),
    "decay_factor": 1.0,
}
THIN: CloudKind = {
    "min_lvl": (0.0, 0.05),
    "max_lvl": (0.3, 0.7),
    "clear_threshold": 0.0,
    "locality_degree": 1,
    "decay_factor": 1.0,
}
PATCHY: CloudKind = {
    "min_lvl": 0.0,
    "max_lvl": 1.0,
    "clear_threshold": (0.1, 0.4),
    "locality_degree": (2, 4),
    "decay_factor": 1.0,
}
# Thin veils are drawn rarely: to a small network they look like a hazy but clear scene, and it learns to darken
# whole scenes; the thick kinds teach it what to replace.
CLOUD_KINDS = (THICK, THICK, PATCHY, PATCHY, THIN)


def real_cloud_spectra(root: Path, limit: int = 2000) -> np.ndarray:
    """(K, 13) L1C reflectance spectra of bright cloud pixels from the eo-learn reference scenes (Slovenia)."""
    scenes = np.load(root / "eo-learn" / "REFERENCE_SCENES.npy")  # (time, H, W, 13), L1C reflectance
    pixels = scenes[:2].reshape(-1, 13)  # scenes 0 and 1 are the cloudy ones
    cloudy = pixels[pixels[:, 1] > CLOUD_BLUE_THRESHOLD]
    rng = np.random.default_rng(0)
    return cloudy[rng.permutation(len(cloudy))[:limit]].astype(np.float32)


def cloud_footprint(cloudy: Tensor, clear: Tensor) -> Tensor:
    """Where the cloudy image differs visibly from the clear one: (B, 1, H, W) bool.

    A B2-B4 mean change above :data:`VISIBLE_CHANGE`: the simulated cloud and its shadow, or a real pair's cloud
    (and any ground change between its two dates).
    """
    return (cloudy[:, 1:4] - clear[:, 1:4]).abs().mean(dim=1, keepdim=True) > VISIBLE_CHANGE


def keep_clear_ground(changed: Tensor, reference: Tensor) -> Tensor:
    """``changed`` where it differs visibly from ``reference`` (:func:`cloud_footprint`), ``reference`` elsewhere.

    The simulated fields are soft: their tails and faint veils change every pixel of a chip a little (about 0.005 to
    0.015 reflectance per band on average below the visible threshold), and a network trained on them learns to
    alter all ground, which on a new place is damage. Applied to a simulated cloudy image (``reference`` the clear
    chip) it leaves clear ground exactly as it is; applied to a real pair's target (``reference`` the cloudy date)
    it keeps the input where no cloud is seen, as the output must (ground change between the dates is not the task).
    """
    return torch.where(cloud_footprint(changed, reference), changed, reference)


def _draw(value: float | tuple[float, float], rng: random.Random) -> float:
    return rng.uniform(*value) if isinstance(value, tuple) else value


def simulate_clouds(clear: Tensor, spectra: Tensor, rng: random.Random, clear_fraction: float = 0.1) -> Tensor:
    """Cover each (13, H, W) chip of a batch with a random cloud field; some chips are left clear on purpose.

    Args:
        clear: (B, 13, H, W) clear reflectance.
        spectra: (K, 13) real cloud spectra to colour the clouds.
        rng: the source of every random choice here (the package itself draws from torch's global generator).
        clear_fraction: share of chips returned unchanged, so the model also learns to leave clear sky alone.
    """
    from satellite_cloud_generator import add_cloud_and_shadow

    out = clear.clone()
    for index in range(clear.shape[0]):
        if rng.random() < clear_fraction:
            continue
        kind = rng.choice(CLOUD_KINDS)
        spectrum = spectra[rng.randrange(len(spectra))] * rng.uniform(0.7, 1.2)
        cloudy = add_cloud_and_shadow(
            clear[index : index + 1],
            max_lvl=_draw(kind["max_lvl"], rng),
            min_lvl=_draw(kind["min_lvl"], rng),
            clear_threshold=_draw(kind["clear_threshold"], rng),
            locality_degree=round(_draw(kind["locality_degree"], rng)),
            decay_factor=_draw(kind["decay_factor"], rng),
            channel_magnitude=spectrum.view(1, -1, 1, 1),
            shadow_max_lvl=(0.2, 0.5),
            cloud_color=False,
            blur_scaling=0.0,
        )
        out[index] = cloudy[0].float()
    return out
