"""Model cards: everything a weights file knows about itself, stored inside the safetensors header.

A card travels in the safetensors metadata under the key ``model_card`` as JSON, so loading a model runs no code
(no pickle) and users set nothing that the model already knows: band order, normalisation, tile size.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from models.sampling.schedule_configs import BridgeSchedule, DESchedule, DiffCRSchedule, Schedule, schedule_from_dict

CARD_KEY = "model_card"

S2_L1C_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
S2_L2A_BANDS = tuple(band for band in S2_L1C_BANDS if band != "B10")
S1_BANDS = ("VV", "VH")
# Red, green, blue under their Sentinel-2 names: what RGB models (DE on RICE) and true-colour views use.
RGB_BANDS = ("B4", "B3", "B2")
# L2A products have no cirrus band B10 (atmospheric correction consumes it). Networks trained on L1C see this
# clear-sky value instead: B10 sits in a water-vapour absorption band, so without cirrus it is near zero (the
# SEN12MS-CR L1C samples have a median of 8-20 DN). The band is dropped again on output.
MISSING_BAND_FILL = {"B10": 0.0015}
# dB ranges that map SAR backscatter onto [0, 1] (DB-CR paper, Sec. IV-A; DSen2-CR).
S1_DB_RANGES = {"VV": (-25.0, 0.0), "VH": (-32.5, 0.0)}
# Scaled SAR input (0-1) where there is no radar: what the shipped models saw for chips without Sentinel-1 in
# training (models.training.batches), so inference says "no radar" the way training did.
SAR_MISSING = 0.0

# What DB-CR's bridge and DE start from: the cloudy image, or that image with its clouds filled from their clear
# surroundings (models/cloud_fill.py).
BRIDGE_STARTS = ("cloudy", "local_fill")
# What a DiffCR network's x0 prediction is added to: nothing (the paper), or the first date's clouds filled from the
# other dates (models/temporal_fill.py), so that the network only corrects that fill.
X0_PRIORS = ("none", "temporal_fill")

S = TypeVar("S", BridgeSchedule, DiffCRSchedule, DESchedule)


@dataclass(frozen=True)
class ModelCard:
    """What a trained network is, what it expects and how well it did.

    Attributes:
        name: short model name, e.g. ``dbcr-lite``.
        algorithm: ``dbcr``, ``diffcr`` or ``de``.
        config: the network's constructor arguments (its config dataclass as a dict).
        optical_bands: band names in the order the network sees them.
        sar_bands: SAR band names (empty when the method uses no SAR).
        optical_scale: digital number that means reflectance 1.0 (10000 for Sentinel-2).
        sar_db_ranges: per SAR band, the dB range mapped linearly onto [0, 1].
        tile_size: the square tile (pixels) the network was trained on and runs best at.
        default_nfe: the sampler steps used when the user gives none.
        schedule: the method's typed schedule (``models.sampling.schedule_configs``); a dict, as older code and
            cards wrote it, is read into that type, with the method's defaults for absent keys. None for a
            network without a sampler (DE's reference network).
        reference_model: DE only: the name or path of its reference network.
        bridge_start: DB-CR and DE: one of :data:`BRIDGE_STARTS`, what the method starts from: the cloudy image,
            or the cloudy image with its clouds filled from the clear ground around them (``local_fill``); older
            cards start at the cloudy image.
        x0_prior: DiffCR only: one of :data:`X0_PRIORS`; older cards have none.
        training: what data and recipe produced the weights.
        metrics: measured results, each with the data it was measured on.
        description: one paragraph for users.
    """

    name: str
    algorithm: str
    config: dict[str, Any]
    optical_bands: tuple[str, ...] = S2_L1C_BANDS
    sar_bands: tuple[str, ...] = S1_BANDS
    optical_scale: float = 10000.0
    sar_db_ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(S1_DB_RANGES))
    tile_size: int = 256
    default_nfe: int = 1
    schedule: Schedule | None = None
    reference_model: str | None = None
    bridge_start: str = "cloudy"
    x0_prior: str = "none"
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.bridge_start not in BRIDGE_STARTS:
            raise ValueError(f"bridge_start must be one of {BRIDGE_STARTS}, not {self.bridge_start!r}")
        if self.x0_prior not in X0_PRIORS:
            raise ValueError(f"x0_prior must be one of {X0_PRIORS}, not {self.x0_prior!r}")
        schedule: Any = self.schedule
        if schedule is None or isinstance(schedule, Mapping):
            # Older cards kept DE's reference network among the schedule's keys.
            if isinstance(schedule, Mapping) and self.reference_model is None and schedule.get("reference_model"):
                object.__setattr__(self, "reference_model", str(schedule["reference_model"]))
            object.__setattr__(self, "schedule", schedule_from_dict(self.algorithm, schedule))

    def to_json(self) -> str:
        """Serialise the card as JSON."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse a card, ignoring fields this version does not know."""
        raw = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in raw.items() if key in known}
        for key in ("optical_bands", "sar_bands"):
            if key in values:
                values[key] = tuple(values[key])
        if "sar_db_ranges" in values:
            values["sar_db_ranges"] = {band: tuple(rng) for band, rng in values["sar_db_ranges"].items()}
        return cls(**values)

    def replace(self, **changes: Any) -> ModelCard:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def card_schedule(card: ModelCard, kind: type[S]) -> S:
    """The card's schedule as its method's type (``BridgeSchedule``, ``DiffCRSchedule`` or ``DESchedule``).

    Raises:
        ValueError: if the card holds another method's schedule, or none.
    """
    schedule: Schedule | None = card.schedule
    if not isinstance(schedule, kind):
        raise ValueError(f"a {card.algorithm} model needs a {kind.__name__}; its card has {schedule!r}")
    return schedule


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], card: ModelCard) -> None:
    """Write a state dict and its card to one safetensors file."""
    tensors = {key: value.detach().contiguous().cpu() for key, value in state_dict.items()}
    save_file(tensors, str(path), metadata={CARD_KEY: card.to_json()})


def read_card(path: str | Path) -> ModelCard:
    """Read only the card of a weights file (cheap: the header, not the tensors)."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if CARD_KEY not in metadata:
        raise ValueError(f"{path} has no model card; it was not written by this plugin or its importer")
    return ModelCard.from_json(metadata[CARD_KEY])


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelCard]:
    """Read the tensors and the card of a weights file."""
    card = read_card(path)
    with safe_open(str(path), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return tensors, card


def file_sha256(path: str | Path) -> str:
    """Checksum of a weights file, shown beside the card."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
