"""Train DiffCR on real clear Sentinel-2 chips with simulated clouds: seeded, logged, resumable.

The recipe is the official one (XavierJiezou/DiffCR ``Network.forward``) on the DB-CR training data:
x0-prediction with the noise level drawn continuously as in SR3 (t ~ U{1..T−1}, then γ ~ U(ᾱ_t, ᾱ_{t−1}) on the
sigmoid schedule), y_t = √γ·y0 + √(1 − γ)·ε, the embedding fed γ, and an MSE loss on x0. For a small CPU budget it
trains with Adam at a one-cycle learning rate and ships an EMA of the weights (official: lr 5e-5, EMA 0.9999).

The network sees exactly what ``models.restorers.diffcr_restorer`` feeds it at inference: reflectance
r → 2r − 1 for the target and for the condition, the condition being each date's 13 L1C bands followed by its
Sentinel-1 VV, VH on [0, 1] (zeros where a chip has no S1, so −1 after scaling), the one cloudy date repeated for
every date of the config. Validation runs that restorer itself (DPM-Solver++ at a small NFE) on held-out places.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.card import S1_BANDS, S2_L1C_BANDS, ModelCard
from models.networks.diffcr import DiffCRConfig, DiffCRNet
from models.restorers import diffcr_restorer
from models.sampling.noise_schedules import alphas_cumprod, make_betas
from models.sampling.schedule_configs import DiffCRSchedule, Thresholding
from models.training.batches import sample_batch
from models.training.chips import Chip
from models.training.clouds import simulate_clouds
from models.training.loop_utils import Log, TrainState, new_state, psnr, run_loop
from models.training.train_dbcr import make_validation

# The official sampler's dynamic thresholding (ratio 0.995, max 1): x0 predictions are kept in [-1, 1].
THRESHOLDING = Thresholding(ratio=0.995, max_val=1.0)
RECIPE_NOTES = {
    "loss": "mse on x0",
    "gamma": "t ~ U{1..T-1}, gamma ~ U(alpha_bar[t], alpha_bar[t-1])",
    "optimizer": "adam, one-cycle lr",
    "validation": "16 crops of held-out places, fixed simulated clouds",
}


@dataclass(frozen=True)
class DiffCRSettings:
    """The recipe, stored in the model card."""

    steps: int = 1600  # about 25 minutes on two CPU cores
    batch: int = 8
    crop: int = 96
    lr: float = 3e-4
    seed: int = 0
    ema: float = 0.995
    eval_every: int = 200
    schedule: str = "sigmoid"
    timesteps: int = 1000
    val_nfe: int = 6


def diffcr_schedule_card(settings: DiffCRSettings) -> DiffCRSchedule:
    """The card's ``schedule``: what the restorer needs to sample as the network was trained."""
    return DiffCRSchedule(settings.schedule, settings.timesteps, time_input="gamma", thresholding=THRESHOLDING)


def diffcr_card(
    name: str,
    config: DiffCRConfig,
    settings: DiffCRSettings,
    sources: dict[str, int] | None = None,
    metrics: dict[str, float] | None = None,
    seconds: float = 0.0,
) -> ModelCard:
    """The card of a DiffCR model trained here (also used, without metrics, to validate during training)."""
    return ModelCard(
        name=name,
        algorithm="diffcr",
        config=asdict(config),
        optical_bands=S2_L1C_BANDS,
        sar_bands=S1_BANDS if config.sar_bands == len(S1_BANDS) else (),
        tile_size=256,
        default_nfe=settings.val_nfe,
        schedule=diffcr_schedule_card(settings),
        training={
            "data": "real clear Sentinel-2 chips with simulated clouds (satellite-cloud-generator shapes, real "
            "L1C cloud spectra from eo-learn); Sentinel-1 where co-registered, zeros elsewhere",
            "chips_by_source": sources or {},
            "recipe": {**asdict(settings), **RECIPE_NOTES},
            "seconds": round(seconds),
            "device": "cpu",
        },
        metrics={f"validation_simulated_clouds_nfe{settings.val_nfe}": metrics or {}},
        description=f"DiffCR {name}: trained by `python -m backend train diffcr` on simulated clouds over real "
        "Sentinel-2 chips; not the authors' weights.",
    )


def condition(cloudy: Tensor, sar: Tensor, config: DiffCRConfig) -> Tensor:
    """(B, dates·(bands + sar_bands), H, W) in [-1, 1]: the restorer's layout, one date repeated for every date."""
    date = torch.cat([cloudy, sar], dim=1) if config.sar_bands else cloudy
    return date.repeat(1, config.dates, 1, 1) * 2 - 1


def sample_gammas(gammas: Tensor, batch: int) -> Tensor:
    """SR3-style continuous noise levels: t ~ U{1..T−1}, γ uniform between ᾱ_t and ᾱ_{t−1} (official code)."""
    t = torch.randint(1, len(gammas), (batch,))
    low, high = gammas[t], gammas[t - 1]
    return low + (high - low) * torch.rand(batch)


def training_step(
    network: DiffCRNet, optimizer: torch.optim.Optimizer, gammas: Tensor, clear: Tensor, cloudy: Tensor, sar: Tensor
) -> float:
    """One MSE step on x0 at random noise levels (``clear`` and ``cloudy`` are reflectance, ``sar`` on [0, 1]).

    A temporal-fill network (scene adaptation sees one date) learns its correction of that date's local fill.
    """
    if network.config.prior:
        from models.restorers import given_dates
        from models.training.train_diffcr_temporal import prior_step

        dates, given = given_dates(cloudy, network.config.bands, network.config.dates)
        return prior_step(network, optimizer, gammas, clear, dates, given)
    x0 = clear.clamp(0, 1) * 2 - 1
    gamma = sample_gammas(gammas, len(x0))
    scale = gamma.view(-1, 1, 1, 1)
    y_t = scale.sqrt() * x0 + (1 - scale).sqrt() * torch.randn_like(x0)
    loss = F.mse_loss(network(y_t, gamma, condition(cloudy, sar, network.config)), x0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def evaluate(
    network: nn.Module, card: ModelCard, validation: dict[str, Tensor], nfe: int, seed: int
) -> dict[str, float]:
    """PSNR of the sampled output (the inference restorer at ``nfe``) and of the cloudy input vs the clear crops."""
    network.eval()
    restore = diffcr_restorer(network, card, nfe, seed)
    crop = validation["clear"].shape[-1]
    origins = [(0, index * crop) for index in range(len(validation["clear"]))]  # distinct noise per crop
    sar = validation["sar"] if card.sar_bands else None
    output = restore(validation["cloudy"], sar, origins)
    clear = validation["clear"]
    return {"psnr_output": psnr(output, clear), "psnr_cloudy": psnr(validation["cloudy"], clear)}


def train_diffcr(
    config: DiffCRConfig,
    settings: DiffCRSettings,
    train_chips: list[Chip],
    val_chips: list[Chip],
    spectra: Tensor,
    run_dir: Path,
    log: Log = print,
    initial: dict[str, Tensor] | None = None,
) -> tuple[DiffCRNet, dict[str, float], float]:
    """Train (or resume from ``run_dir/checkpoint.pt``); return the EMA network, its last validation and seconds."""
    if config.prior:
        raise ValueError("a DiffCR config with a prior trains with models.training.train_diffcr_temporal")
    if config.sar_bands not in (0, len(S1_BANDS)):
        raise ValueError(f"the training chips carry Sentinel-1 VV, VH; a config with {config.sar_bands} SAR bands")
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    gammas = alphas_cumprod(make_betas(settings.schedule, settings.timesteps)).float()
    state: TrainState = new_state(DiffCRNet(config), settings.lr, settings.steps, settings.seed, initial)
    validation = make_validation(val_chips, spectra, settings.crop, settings.seed)
    card = diffcr_card("validation", config, settings)
    network = state.network
    assert isinstance(network, DiffCRNet)

    def step() -> float:
        batch = sample_batch(train_chips, settings.batch, settings.crop, state.rng)
        cloudy = simulate_clouds(batch.clear, spectra, state.rng)
        return training_step(network, state.optimizer, gammas, batch.clear, cloudy, batch.sar)

    def validate(ema: nn.Module) -> dict[str, float]:
        metrics = evaluate(ema, card, validation, settings.val_nfe, settings.seed)
        ema.train()
        return metrics

    metrics, seconds = run_loop(
        state, settings.steps, settings.eval_every, settings.ema, step, validate, run_dir / "checkpoint.pt", log
    )
    ema = state.ema
    assert isinstance(ema, DiffCRNet)
    return ema.eval(), metrics, seconds
