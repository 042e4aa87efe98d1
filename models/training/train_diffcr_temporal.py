"""Train a temporal-fill DiffCR (``DiffCRConfig.prior``): the network learns a correction of the temporal fill.

Each training sample is a real clear chip seen on ``dates`` simulated dates: every date under its own simulated
clouds, the later ones with a random per-band gain and offset (another day's sun and haze) and, from a random
count on, missing (a user may give fewer dates). The condition and the prior are exactly the restorer's
(:func:`models.restorers.diffcr_prior_condition`: s2cloudless per date, then :func:`models.temporal_fill`), and
the loss is the MSE of ``prior + network output`` against the clear chip, as in ``models.training.train_diffcr``.

Validation runs the inference restorer on the real series items (``runs/eval-sets/s2-series``'s dates, read from the
data folder): the whole image with the first date kept where s2cloudless finds it clear, as users get it, and the
cloud alone. The series is never trained on; choosing the shipped checkpoint on it makes it a validation set, not
a held-out one, and the model card says so. The step-0 network (which returns the temporal fill) is validated too
and is kept when no later step beats it.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.card import S2_L1C_BANDS, ModelCard
from models.cloud_fill import tile_cloud_mask
from models.cloudmask import DEFAULT_THRESHOLD
from models.datasets.rasters import read_reflectance
from models.datasets.real_pairs import SERIES_ITEMS, series_dates
from models.networks.diffcr import DiffCRConfig, DiffCRNet
from models.restorers import diffcr_prior_condition, diffcr_restorer
from models.sampling.noise_schedules import alphas_cumprod, make_betas
from models.training.batches import sample_batch
from models.training.chips import Chip
from models.training.clouds import simulate_clouds
from models.training.loop_utils import BEST_FILE, Log, new_state, psnr, run_loop
from models.training.train_diffcr import DiffCRSettings, sample_gammas

# Another date's radiometry: per band, gain and offset (reflectance) drawn uniformly in these ranges.
DATE_GAIN = (0.85, 1.15)
DATE_OFFSET = (-0.02, 0.02)


def series_validation(data_root: Path) -> dict[str, Tensor]:
    """The series items: ``dates`` (N, 3·13, H, W) (cloudy, date2, date3), ``target`` and the first date's ``mask``."""
    paths = series_dates(data_root)
    dates, targets = [], []
    for cloudy, extras, target in SERIES_ITEMS:
        stack = [np.nan_to_num(read_reflectance(paths[index])) for index in (cloudy, *extras)]
        dates.append(np.concatenate(stack))
        targets.append(np.nan_to_num(read_reflectance(paths[target])))
    optical = torch.from_numpy(np.stack(dates)).float().clamp(0, 1)
    mask = tile_cloud_mask(optical[:, :13], S2_L1C_BANDS, DEFAULT_THRESHOLD)
    return {"dates": optical, "target": torch.from_numpy(np.stack(targets)).float(), "mask": mask}


def evaluate_series(network: nn.Module, card: ModelCard, validation: dict[str, Tensor], nfe: int) -> dict[str, float]:
    """Mean PSNR over the items: whole image (first date kept where clear), under the cloud, and the cloudy input."""
    network.eval()
    restore = diffcr_restorer(network, card, nfe)
    dates, target, mask = validation["dates"], validation["target"], validation["mask"]
    scores: dict[str, list[float]] = {"psnr_output": [], "psnr_cloud": [], "psnr_cloudy": []}
    for index in range(len(dates)):
        first, cloud = dates[index : index + 1, :13], mask[index : index + 1] > 0
        output = restore(dates[index : index + 1], None, [(0, 0)], mask[index : index + 1])
        kept = torch.where(cloud, output, first)
        under = cloud.expand_as(kept)
        scores["psnr_output"].append(psnr(kept, target[index : index + 1]))
        scores["psnr_cloud"].append(psnr(kept[under], target[index : index + 1][under]))
        scores["psnr_cloudy"].append(psnr(first, target[index : index + 1]))
    return {key: round(sum(values) / len(values), 4) for key, values in scores.items()}


def simulated_dates(clear: Tensor, spectra: Tensor, rng: random.Random, count: int) -> Tensor:
    """(B, 13, S, S) clear chips → (B, count, 13, S, S), each date under its own simulated clouds.

    The later dates have another radiometry (:data:`DATE_GAIN`, :data:`DATE_OFFSET` per chip and band).
    """
    dates = [simulate_clouds(clear, spectra, rng)]
    for _ in range(1, count):
        gain = torch.tensor([[rng.uniform(*DATE_GAIN) for _ in range(clear.shape[1])] for _ in range(len(clear))])
        offset = torch.tensor([[rng.uniform(*DATE_OFFSET) for _ in range(clear.shape[1])] for _ in range(len(clear))])
        other = (clear * gain[..., None, None] + offset[..., None, None]).clamp(0, 1)
        dates.append(simulate_clouds(other, spectra, rng))
    return torch.stack(dates, dim=1)


def prior_step(
    network: DiffCRNet, optimizer: torch.optim.Optimizer, gammas: Tensor, clear: Tensor, dates: Tensor, given: int
) -> float:
    """One MSE step on x0 = prior + network output, at SR3-style random noise levels (as ``training_step``)."""
    x0 = clear.clamp(0, 1) * 2 - 1
    with torch.no_grad():
        cond, prior = diffcr_prior_condition(dates, given, S2_L1C_BANDS, None)
    gamma = sample_gammas(gammas, len(x0))
    scale = gamma.view(-1, 1, 1, 1)
    y_t = scale.sqrt() * x0 + (1 - scale).sqrt() * torch.randn_like(x0)
    loss = F.mse_loss(prior + network(y_t, gamma, torch.cat([cond, prior], dim=1)), x0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


@dataclass
class Best:
    """The best validated EMA so far: its step, metrics and weights (also in ``run_dir/best.pt``)."""

    step: int
    metrics: dict[str, float]
    weights: dict[str, Tensor]


def train_temporal(
    config: DiffCRConfig,
    settings: DiffCRSettings,
    card: ModelCard,
    train_chips: list[Chip],
    validation: dict[str, Tensor],
    spectra: Tensor,
    run_dir: Path,
    log: Log = print,
) -> tuple[DiffCRNet, dict[str, float], float, int]:
    """Train; return the best EMA network by series validation, its metrics, the seconds and its step."""
    s = settings
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(s.seed)
    gammas = alphas_cumprod(make_betas(s.schedule, s.timesteps)).float()
    state = new_state(DiffCRNet(config), s.lr, s.steps, s.seed)
    network = state.network
    assert isinstance(network, DiffCRNet)
    start = evaluate_series(state.ema, card, validation, s.val_nfe)
    log(json.dumps({"step": 0, **start}))
    best = Best(0, start, copy.deepcopy(state.ema.state_dict()))

    def step() -> float:
        batch = sample_batch(train_chips, s.batch, s.crop, state.rng)
        given = state.rng.randint(1, config.dates)
        return prior_step(network, state.optimizer, gammas, batch.clear, simulated_dates(
            batch.clear, spectra, state.rng, config.dates), given)  # fmt: skip

    def validate(ema: nn.Module) -> dict[str, float]:
        metrics = evaluate_series(ema, card, validation, s.val_nfe)
        ema.train()
        done = int(state.scheduler.last_epoch)
        if metrics["psnr_output"] > best.metrics["psnr_output"]:
            best.step, best.metrics, best.weights = done, metrics, copy.deepcopy(ema.state_dict())
            torch.save({"ema": best.weights, "step": done, "metrics": json.dumps(metrics)}, run_dir / BEST_FILE)
        return metrics

    _, seconds = run_loop(state, s.steps, s.eval_every, s.ema, step, validate, run_dir / "checkpoint.pt", log)
    shipped = DiffCRNet(config)
    shipped.load_state_dict(best.weights)
    log(json.dumps({"kept_step": best.step, **best.metrics}))
    return shipped.eval(), best.metrics, seconds, best.step


# The temporal recipe: short, validated every 100 steps at the restorer's smallest NFE (the prior carries the image).
TEMPORAL_SETTINGS = DiffCRSettings(steps=300, eval_every=100, val_nfe=2)


def temporal_card(
    name: str,
    config: DiffCRConfig,
    settings: DiffCRSettings,
    sources: dict[str, int] | None = None,
    metrics: dict[str, float] | None = None,
    seconds: float = 0.0,
    kept_step: int = 0,
) -> ModelCard:
    """The card of a temporal-fill DiffCR trained here; at ``kept_step`` 0 it says the output is the temporal fill."""
    from models.training.train_diffcr import diffcr_card

    card = diffcr_card(name, config, settings, sources, None, seconds)
    network = (
        "Its network is the untrained start (step 0: its last layer is zero), the best checkpoint by validation, so "
        "what fills the clouds is that temporal fill itself, at any NFE."
        if kept_step == 0
        else f"Its network, trained {kept_step} steps on simulated dates, corrects that fill."
    )
    return card.replace(
        x0_prior="temporal_fill",
        training={
            **card.training,
            "data": "real clear Sentinel-2 chips, each seen on simulated dates (its own simulated clouds per date, a "
            "random gain and offset per band on later dates, later dates missing from a random count on)",
            "recipe": {**card.training["recipe"], "validation": "the 4 s2-series items, NFE as val_nfe"},
            "kept_step": kept_step,
            "validation": "the s2-series items (SEN12MS-CR-TS, never trained on; the checkpoint was chosen on them, so "
            "they are a validation set, not held out)",
        },
        metrics={f"validation_s2_series_nfe{settings.val_nfe}": metrics or {}},
        description=f"DiffCR {name}: optical only, 1 to {config.dates} dates of one place (the first is cleaned; "
        "later dates are warped onto it). The first date is kept where s2cloudless finds it clear; its clouds are "
        "filled from the other dates' clear pixels, each matched to the first date's brightness (a gain and offset "
        "per band), the nearest date first, and from the clear ground around them where every date is cloudy. "
        f"{network} Not the authors' weights.",
    )
