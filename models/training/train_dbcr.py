"""Train a DB-CR network on clear chips with simulated clouds and on real cloudy / clear pairs: seeded, resumable.

The recipe follows the paper (bridge x_t = (1 - a_t) x0 + a_t y, MAE on x0_hat, Adam) with changes for a small
CPU budget: half of the timesteps are drawn at t = T, the state a one-step (NFE = 1) run starts from, and the
weights are averaged (EMA). The network starts as the identity; what it must learn is to replace the cloud and
leave clear ground alone. The first shipped model did not: on held-out places its clear pixels fell from 36.1 dB
(the input) to 26.8 dB while under the cloud it gained 1 dB. So the MAE is taken apart over the cloud's footprint
and the clear pixels, each a mean, then summed (``balanced_loss``); clear ground outside the footprint is kept
exactly in the inputs and targets (``keep_clear``); and validation at the shipped NFE on held-out places
(simulated clouds) and held-out real pairs, by region, picks the checkpoint that ships (``best.pt``).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.card import S2_L1C_BANDS, SAR_MISSING, ModelCard
from models.cloud_fill import fill_clouds, filled_start, tile_cloud_mask
from models.cloudmask import DEFAULT_THRESHOLD
from models.datasets.real_pairs import RealPair
from models.keep_clear import fill_clouds_only
from models.networks.dbcr import DBCRConfig, DBCRNet
from models.restorers import make_restorer
from models.sampling.bridge import bridge_steps, sample_bridge
from models.sampling.bridge_schedules import BRIDGE_TIMESTEPS, bridge_schedule, bridge_state
from models.sampling.schedule_configs import BridgeSchedule
from models.training.batches import sample_batch, sample_real_pairs
from models.training.chips import Chip
from models.training.clouds import cloud_footprint, keep_clear_ground, simulate_clouds
from models.training.loop_utils import (
    BEST_FILE,
    Log,
    checkpoint,
    last_validation,
    psnr,
    resume,
    save_model,
    update_ema,
)

# The clear pixels' share of a local-fill model's loss (see masked_l1).
CLEAR_WEIGHT = 0.1

__all__ = [
    "TrainSettings",
    "checkpoint",
    "dbcr_card",
    "evaluate",
    "evaluate_filled",
    "last_validation",
    "load_checkpoint_ema",
    "make_validation",
    "psnr",
    "resume",
    "save_model",
    "train_dbcr",
    "training_step",
]


@dataclass(frozen=True)
class TrainSettings:
    """The recipe, stored in the model card."""

    steps: int = 3000
    batch: int = 8
    crop: int = 128
    lr: float = 3e-4
    seed: int = 0
    t_end_share: float = 0.5
    ema: float = 0.995
    eval_every: int = 250
    schedule: str = "linear"
    # Off by default: in short runs both sped up the loss of clear ground on held-out places (docs/ training curves)
    # while the real pairs lifted held-out real pairs under the cloud. ``train dbcr --real-share`` turns pairs on.
    real_share: float = 0.0
    balanced_loss: bool = False
    sar_dropout: float = 0.1
    # Outside the cloud's visible footprint the input is made the target exactly (see keep_clear_ground).
    keep_clear: bool = True
    # "local_fill": the bridge starts at the cloudy image with its s2cloudless clouds filled from the clear ground
    # around them (models/cloud_fill.py); the loss and the validation count only what a user gets, the clouds
    # (clear pixels are kept from the input), and a fresh network is exactly that fill.
    bridge_start: str = "cloudy"


def make_validation(
    chips: list[Chip], spectra: Tensor, crop: int, seed: int, real_pairs: list[RealPair] | None = None
) -> dict[str, Tensor]:
    """Fixed cloudy/clear/SAR crops of the held-out places, made once so every evaluation sees the same clouds.

    With ``real_pairs`` (the held-out scenes of ``models.datasets.real_pairs``), their whole images too, under
    ``real_*`` keys, with their s2cloudless masks (as ``python -m backend eval`` finds clouds).
    """
    rng = random.Random(seed + 1)
    torch.manual_seed(seed + 1)
    batch = sample_batch(chips, 16, crop, rng, sar_dropout=0.0)
    cloudy = simulate_clouds(batch.clear, spectra, rng, clear_fraction=0.0)
    validation = {"clear": batch.clear, "cloudy": cloudy, "sar": batch.sar}
    validation["mask"] = tile_cloud_mask(cloudy.clamp(0, 1), S2_L1C_BANDS, DEFAULT_THRESHOLD)[:, 0] > 0
    if real_pairs:
        from models.cloudmask import cloud_mask

        validation["real_cloudy"] = torch.from_numpy(np.stack([pair.cloudy for pair in real_pairs]))
        validation["real_clear"] = torch.from_numpy(np.stack([pair.clear for pair in real_pairs]))
        validation["real_mask"] = torch.from_numpy(np.stack([cloud_mask(pair.cloudy) for pair in real_pairs]))
    return validation


def region_psnr(output: Tensor, target: Tensor, mask: Tensor) -> float:
    """PSNR (dB) over the pixels of ``mask`` (B, H, W) bool, all bands, reflectance clamped to [0, 1]."""
    if not mask.any():
        return math.nan
    error = (output.clamp(0, 1) - target.clamp(0, 1)).square().mean(dim=1)[mask].mean()
    return -10.0 * math.log10(max(float(error), 1e-24))


def _scores(prefix: str, output: Tensor, cloudy: Tensor, clear: Tensor, mask: Tensor) -> dict[str, float]:
    scores = {f"{prefix}psnr_output": psnr(output, clear), f"{prefix}psnr_cloudy": psnr(cloudy, clear)}
    for region, pixels in (("cloud", mask), ("clear", ~mask)):
        scores[f"{prefix}psnr_output_{region}"] = region_psnr(output, clear, pixels)
        scores[f"{prefix}psnr_cloudy_{region}"] = region_psnr(cloudy, clear, pixels)
    return scores


def evaluate(network: DBCRNet, alphas: Tensor, validation: dict[str, Tensor], nfe: int = 1) -> dict[str, float]:
    """PSNR of the output at the shipped NFE and of the cloudy input: whole crops, under the cloud, clear pixels.

    Simulated clouds (their footprint, :func:`cloud_footprint`) and, where the validation has them, the held-out
    real pairs (``real_`` keys; their s2cloudless mask). ``score`` is what the best checkpoint is chosen by: the
    output's PSNR, averaged with the real pairs' when there are any.
    """
    network.eval()
    with torch.inference_mode():
        cloudy = validation["cloudy"].clamp(0, 1)
        output = sample_bridge(network, cloudy, bridge_steps(nfe, alphas), validation["sar"])
        mask = cloud_footprint(cloudy, validation["clear"])[:, 0]
        scores = _scores("", output, cloudy, validation["clear"], mask)
        if "real_cloudy" in validation:
            real = validation["real_cloudy"]
            sar = torch.full((len(real), 2, *real.shape[-2:]), SAR_MISSING)
            real_output = sample_bridge(network, real, bridge_steps(nfe, alphas), sar)
            scores |= _scores("real_", real_output, real, validation["real_clear"], validation["real_mask"])
    network.train()
    real_psnr = scores.get("real_psnr_output")
    scores["score"] = scores["psnr_output"] if real_psnr is None else (scores["psnr_output"] + real_psnr) / 2
    return scores


def evaluate_filled(
    network: DBCRNet, settings: TrainSettings, validation: dict[str, Tensor], nfe: int = 1
) -> dict[str, float]:
    """What a user gets from a ``local_fill`` model at the shipped NFE: the restorer under the s2cloudless mask.

    The output goes through :func:`models.keep_clear.fill_clouds_only`, as ``backend run`` does, so clear pixels
    are the input's and only the clouds differ. ``score`` is the mean PSNR under the cloud of the simulated crops
    and of the held-out real pairs.
    """
    restore = make_restorer(network, dbcr_card("validation", network.config, settings, {}, {}, 0.0), nfe)
    network.eval()
    scores: dict[str, float] = {}
    with torch.inference_mode():
        for prefix, sar in (("", validation["sar"]), ("real_", None)):
            if f"{prefix}cloudy" not in validation:
                continue
            cloudy, clear, mask = (validation[f"{prefix}{name}"] for name in ("cloudy", "clear", "mask"))
            cloudy = cloudy.clamp(0, 1)
            sar = sar if sar is not None else torch.full((len(cloudy), 2, *cloudy.shape[-2:]), SAR_MISSING)
            masks = mask[:, None].to(cloudy.dtype)
            output = fill_clouds_only(restore, cloudy, sar, [(0, 0)] * len(cloudy), masks)
            scores |= _scores(prefix, output, cloudy, clear, mask)
            scores[f"{prefix}psnr_local_fill_cloud"] = region_psnr(
                fill_clouds(cloudy, masks, S2_L1C_BANDS), clear, mask
            )
    network.train()
    cloud_scores = [scores[k] for k in ("psnr_output_cloud", "real_psnr_output_cloud") if k in scores]
    scores["score"] = float(np.nanmean(cloud_scores))
    return scores


def masked_l1(prediction: Tensor, target: Tensor, mask: Tensor, clear_weight: float = CLEAR_WEIGHT) -> Tensor:
    """Mean absolute error over the masked pixels plus ``clear_weight`` times that over the others.

    A term without pixels adds 0. Only the clouds reach the user (the rest is kept from the input), but the clear
    pixels still matter a little: the keep-clear pass shifts the output by its mean difference from the input there
    (match_clear_pixels).
    """
    error = (prediction - target).abs()
    inside = mask.expand_as(error).to(error.dtype)
    outside = 1.0 - inside
    cloud = (error * inside).sum() / inside.sum().clamp(min=1.0)
    return cloud + clear_weight * (error * outside).sum() / outside.sum().clamp(min=1.0)


def balanced_l1(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute error over the masked pixels plus that over the others (a term without pixels adds 0).

    Args:
        prediction: (B, C, H, W).
        target: (B, C, H, W).
        mask: (B, 1, H, W) bool, True under the cloud.
    """
    return masked_l1(prediction, target, mask, clear_weight=1.0)


def training_step(
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    alphas: Tensor,
    clear: Tensor,
    cloudy: Tensor,
    sar: Tensor,
    t_end_share: float,
    rng: random.Random,
    balanced: bool = False,
    bridge_start: str = "cloudy",
) -> float:
    """One MAE step on the bridge at random timesteps, ``t_end_share`` of them at t = T (where NFE 1 starts).

    ``balanced`` takes the MAE apart over the cloud's footprint and the clear pixels (:func:`balanced_l1`).
    ``bridge_start == "local_fill"`` starts the bridge at the filled cloudy image and counts the s2cloudless
    clouds (:func:`masked_l1`), as the model will be run.
    """
    timesteps = len(alphas) - 1
    t = torch.tensor(
        [timesteps if rng.random() < t_end_share else rng.randint(1, timesteps) for _ in range(len(clear))]
    )
    start, clouds = cloudy, None
    if bridge_start == "local_fill":
        clouds = tile_cloud_mask(cloudy, S2_L1C_BANDS, DEFAULT_THRESHOLD)
        start, sar = filled_start(cloudy, sar, clouds, S2_L1C_BANDS)
    x_t = bridge_state(clear, start, alphas[t])
    prediction = network(x_t, t.float(), sar)
    if clouds is not None:
        loss = masked_l1(prediction, clear, clouds > 0)
    elif balanced:
        loss = balanced_l1(prediction, clear, cloud_footprint(cloudy, clear))
    else:
        loss = F.l1_loss(prediction, clear)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_dbcr(
    config: DBCRConfig,
    settings: TrainSettings,
    train_chips: list[Chip],
    val_chips: list[Chip],
    spectra: Tensor,
    run_dir: Path,
    log: Log = print,
    initial: dict[str, Tensor] | None = None,
    real_train: list[RealPair] | None = None,
    real_val: list[RealPair] | None = None,
) -> tuple[DBCRNet, dict[str, float]]:
    """Train (or resume from ``run_dir/checkpoint.pt``) and return the best EMA network with its validation.

    ``initial`` (a state dict) starts the network from an earlier model rather than from the identity.
    ``real_train`` pairs fill ``settings.real_share`` of each batch (at least one crop stays simulated);
    ``real_val`` pairs join the validation. The EMA of the best ``score`` so far is kept in ``run_dir/best.pt``.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    alphas = bridge_schedule(settings.schedule, BRIDGE_TIMESTEPS).float()
    network = DBCRNet(config)
    if initial is not None:
        network.load_state_dict(initial)
    ema = copy.deepcopy(network).requires_grad_(False)
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.lr, total_steps=settings.steps, pct_start=0.05)
    start = resume(run_dir / "checkpoint.pt", network, ema, optimizer, scheduler, rng)
    validation = make_validation(val_chips, spectra, settings.crop, settings.seed, real_val)
    best_path = run_dir / BEST_FILE
    best = torch.load(best_path, weights_only=True) if best_path.exists() and start else None
    metrics: dict[str, float] = json.loads(best["metrics"]) if best is not None else {}
    filled = settings.bridge_start == "local_fill"

    def validate(network: DBCRNet) -> dict[str, float]:
        return evaluate_filled(network, settings, validation) if filled else evaluate(network, alphas, validation)

    if filled and start == 0:
        # The starting network is a candidate too: training must beat the fill it starts from to ship.
        scores = validate(ema)
        log(json.dumps({"step": 0, "seconds": 0, **scores}))
        best = {"step": 0, "ema": copy.deepcopy(ema.state_dict()), "metrics": json.dumps(scores)}
        torch.save(best, best_path)
        metrics = scores | {"step": 0}
    started = time.time()
    for step in range(start, settings.steps):
        clear, cloudy, sar = _mixed_batch(train_chips, real_train or [], spectra, settings, rng)
        loss = training_step(
            network,
            optimizer,
            alphas,
            clear,
            cloudy,
            sar,
            settings.t_end_share,
            rng,
            settings.balanced_loss,
            settings.bridge_start,
        )
        scheduler.step()
        update_ema(ema, network, settings.ema)
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            scores = validate(ema)
            elapsed = time.time() - started
            log(json.dumps({"step": step + 1, "loss": round(loss, 5), "seconds": round(elapsed), **scores}))
            if best is None or scores["score"] > json.loads(best["metrics"])["score"]:
                best = {"step": step + 1, "ema": copy.deepcopy(ema.state_dict()), "metrics": json.dumps(scores)}
                torch.save(best, best_path)
                metrics = scores | {"step": step + 1}
            checkpoint(run_dir / "checkpoint.pt", step + 1, network, ema, optimizer, scheduler, rng)
    if best is not None:
        ema.load_state_dict(best["ema"])
    return ema.eval(), metrics


def _mixed_batch(
    chips: list[Chip], pairs: list[RealPair], spectra: Tensor, settings: TrainSettings, rng: random.Random
) -> tuple[Tensor, Tensor, Tensor]:
    """(clear, cloudy, SAR) of one step: simulated clouds over clear chips, ``real_share`` of it real pairs."""
    real = min(sum(rng.random() < settings.real_share for _ in range(settings.batch)), settings.batch - 1)
    real = real if pairs else 0
    batch = sample_batch(chips, settings.batch - real, settings.crop, rng, sar_dropout=settings.sar_dropout)
    clear, sar = batch.clear, batch.sar
    cloudy = simulate_clouds(clear, spectra, rng).clamp(0, 1)
    if settings.keep_clear:
        cloudy = keep_clear_ground(cloudy, clear)
    if real:
        real_clear, real_cloudy = sample_real_pairs(pairs, real, settings.crop, rng)
        if settings.keep_clear:  # the other date's changes on clear ground are not the task: keep the input there
            real_clear = keep_clear_ground(real_clear, real_cloudy)
        clear, cloudy = torch.cat([clear, real_clear]), torch.cat([cloudy, real_cloudy])
        sar = torch.cat([sar, torch.full((real, 2, settings.crop, settings.crop), SAR_MISSING)])
    return clear, cloudy, sar


def load_checkpoint_ema(path: Path, config: DBCRConfig) -> tuple[DBCRNet, int]:
    """The averaged network of a checkpoint and its step: to ship a run that was stopped early."""
    state = torch.load(path, weights_only=True)
    network = DBCRNet(config)
    network.load_state_dict(state["ema"])
    return network.eval(), int(state["step"])


def dbcr_card(
    name: str,
    config: DBCRConfig,
    settings: TrainSettings,
    sources: dict[str, int],
    metrics: dict[str, float],
    seconds: float,
) -> ModelCard:
    """The card of a freshly trained DB-CR model."""
    return ModelCard(
        name=name,
        algorithm="dbcr",
        config=config.to_dict(),
        tile_size=256,
        default_nfe=1,
        schedule=BridgeSchedule(settings.schedule, BRIDGE_TIMESTEPS),
        bridge_start=settings.bridge_start,
        training={
            "data": "real clear Sentinel-2 chips with simulated clouds (satellite-cloud-generator shapes, real "
            "L1C cloud spectra from eo-learn); Sentinel-1 where co-registered"
            + ("; real SEN12MS-CR cloudy / cloud-free pairs of the training scenes" if settings.real_share else ""),
            "chips_by_source": sources,
            "recipe": asdict(settings),
            "seconds": round(seconds),
            "device": "cpu",
        },
        metrics={"validation_simulated_clouds_nfe1": metrics},
        description=f"DB-CR {name}: trained by `python -m backend train dbcr`; not SEN12MS-CR weights.",
    )
