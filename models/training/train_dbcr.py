"""Train a DB-CR network on real clear chips with simulated clouds: seeded, logged, resumable.

The recipe follows the paper (bridge x_t = (1 - a_t) x0 + a_t y, MAE on x0_hat, Adam) with two changes for a
small CPU budget: half of the timesteps are drawn at t = T, the state a one-step (NFE = 1) run starts from, and
the weights are averaged (EMA) for the shipped file.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.card import ModelCard
from models.networks.dbcr import DBCRConfig, DBCRNet
from models.sampling.bridge import bridge_steps, sample_bridge
from models.sampling.bridge_schedules import BRIDGE_TIMESTEPS, bridge_schedule, bridge_state
from models.sampling.schedule_configs import BridgeSchedule
from models.training.batches import sample_batch
from models.training.chips import Chip
from models.training.clouds import simulate_clouds
from models.training.loop_utils import Log, checkpoint, last_validation, psnr, resume, save_model, update_ema

__all__ = [
    "TrainSettings",
    "checkpoint",
    "dbcr_card",
    "evaluate",
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


def make_validation(chips: list[Chip], spectra: Tensor, crop: int, seed: int) -> dict[str, Tensor]:
    """Fixed cloudy/clear/SAR crops of the held-out places, made once so every evaluation sees the same clouds."""
    rng = random.Random(seed + 1)
    torch.manual_seed(seed + 1)
    batch = sample_batch(chips, 16, crop, rng, sar_dropout=0.0)
    cloudy = simulate_clouds(batch.clear, spectra, rng, clear_fraction=0.0)
    return {"clear": batch.clear, "cloudy": cloudy, "sar": batch.sar}


def evaluate(network: DBCRNet, alphas: Tensor, validation: dict[str, Tensor]) -> dict[str, float]:
    """PSNR of the NFE = 1 output and of the cloudy input against the clear crops."""
    network.eval()
    with torch.inference_mode():
        cloudy = validation["cloudy"].clamp(0, 1)
        output = sample_bridge(network, cloudy, bridge_steps(1, alphas), validation["sar"])
    network.train()
    return {"psnr_output": psnr(output, validation["clear"]), "psnr_cloudy": psnr(cloudy, validation["clear"])}


def training_step(
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    alphas: Tensor,
    clear: Tensor,
    cloudy: Tensor,
    sar: Tensor,
    t_end_share: float,
    rng: random.Random,
) -> float:
    """One MAE step on the bridge at random timesteps, ``t_end_share`` of them at t = T (where NFE 1 starts)."""
    timesteps = len(alphas) - 1
    t = torch.tensor(
        [timesteps if rng.random() < t_end_share else rng.randint(1, timesteps) for _ in range(len(clear))]
    )
    x_t = bridge_state(clear, cloudy, alphas[t])
    loss = F.l1_loss(network(x_t, t.float(), sar), clear)
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
) -> tuple[DBCRNet, dict[str, float]]:
    """Train (or resume from ``run_dir/checkpoint.pt``) and return the EMA network with its last validation.

    ``initial`` (a state dict) starts the network from an earlier model rather than from the identity.
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
    validation = make_validation(val_chips, spectra, settings.crop, settings.seed)
    metrics: dict[str, float] = {}
    started = time.time()
    for step in range(start, settings.steps):
        batch = sample_batch(train_chips, settings.batch, settings.crop, rng)
        cloudy = simulate_clouds(batch.clear, spectra, rng).clamp(0, 1)
        loss = training_step(network, optimizer, alphas, batch.clear, cloudy, batch.sar, settings.t_end_share, rng)
        scheduler.step()
        update_ema(ema, network, settings.ema)
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            metrics = evaluate(ema, alphas, validation)
            elapsed = time.time() - started
            log(json.dumps({"step": step + 1, "loss": round(loss, 5), "seconds": round(elapsed), **metrics}))
            checkpoint(run_dir / "checkpoint.pt", step + 1, network, ema, optimizer, scheduler, rng)
    return ema.eval(), metrics


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
        training={
            "data": "real clear Sentinel-2 chips with simulated clouds (satellite-cloud-generator shapes, real "
            "L1C cloud spectra from eo-learn); Sentinel-1 where co-registered",
            "chips_by_source": sources,
            "recipe": asdict(settings),
            "seconds": round(seconds),
            "device": "cpu",
        },
        metrics={"validation_simulated_clouds_nfe1": metrics},
        description=f"DB-CR {name}: trained by `python -m backend train dbcr`; not SEN12MS-CR weights.",
    )
