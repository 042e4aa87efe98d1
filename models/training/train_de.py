"""Train DE on RICE pairs: first its reference network (end to end, L1), then the noise predictor with its WA net.

The DE recipe is the official ``training_losses`` (littlebeen/DDPM-Enhancement-for-Cloud-Removal
``gaussian_diffusion_enhance.py``, official): t ~ U{0..T−1} on ADM's linear schedule, x_t = √ᾱ·x0 + √(1−ᾱ)·ε,
loss = mean (ε − ε_θ)² + mean |x0 − (1 − w)·x̂0_ε − w·ref|, where x̂0_ε (clipped to [-1, 1]) and the frozen
reference's output are computed without gradients, so the L1 term trains only the WA net and w is not clamped.
Data are what ``models.restorers.de_restorer`` feeds at inference: 8-bit / 255 → 2r − 1, the
reference fed the cloudy image on [0, 1] and its output mapped ×2 − 1. Random 64–128 px crops with flips and quarter
turns replace the official whole-image resizing to 64², Adam at a one-cycle rate and an EMA of 0.995 replace
AdamW 1e-5 with EMA 0.9999, so that a CPU can train it in minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.card import RGB_BANDS, ModelCard
from models.networks.de import DEConfig, DENet
from models.networks.de_reference import DEReferenceConfig, DEReferenceNet
from models.restorers import de_restorer
from models.sampling.noise_schedules import alphas_cumprod, make_betas
from models.sampling.schedule_configs import W_MIN, DESchedule
from models.training.loop_utils import BEST_FILE, Log, load_best, mean_psnr, new_state, run_loop
from models.training.rice_pairs import HOLD_OUT_EVERY, RICE_SETS, Pairs, center_crops, crop_sizes, sample_pairs

DATA = (
    "RICE2 (Lin et al. 2019: Landsat 8 RGB, 8-bit; 256² pairs and 512² pairs cut into 256² quarters), every {every}th "
    "pair of each set in id order held out for validation"
)
# Validation images as tensors on [0, 1]: each RICE set's (cloudy, clear), keyed by its metrics' suffix.
Validation = dict[str, tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class ReferenceSettings:
    """The reference network's recipe, stored in its card."""

    steps: int = 600  # about 25 minutes on two CPU cores
    batch: int = 8
    crop: int = 128
    min_crop: int = 64
    lr: float = 5e-4
    seed: int = 0
    ema: float = 0.995
    eval_every: int = 200
    val_crop: int = 0  # 0: the whole held-out images


@dataclass(frozen=True)
class DESettings:
    """The DE recipe (noise predictor + WA), stored in its card."""

    steps: int = 300  # about 25 minutes on two CPU cores, validation included
    batch: int = 4
    crop: int = 128
    min_crop: int = 64
    lr: float = 2e-4
    seed: int = 0
    ema: float = 0.995
    eval_every: int = 150
    schedule: str = "adm-linear"
    timesteps: int = 1000
    w_min: float = W_MIN
    val_nfe: int = 10
    val_crop: int = 128  # central squares of the held-out images: a 10-step DDIM on whole ones costs minutes
    # What DE restores at inference (and in validation): the cloudy image with its clouds filled from the clear
    # ground around them (models.restorers.de_restorer); training pairs stay as they are.
    bridge_start: str = "local_fill"


def _training(settings: ReferenceSettings | DESettings, pairs: int, seconds: float, **more: Any) -> dict[str, Any]:
    return {
        "data": DATA.format(every=HOLD_OUT_EVERY),
        "train_pairs": pairs,
        "recipe": {**asdict(settings), **more},
        "seconds": round(seconds),
        "device": "cpu",
    }


def reference_card(
    name: str,
    config: DEReferenceConfig,
    settings: ReferenceSettings,
    pairs: int = 0,
    metrics: dict[str, float] | None = None,
    seconds: float = 0.0,
) -> ModelCard:
    """The card of a reference network trained here."""
    return ModelCard(
        name=name,
        algorithm="de-reference",
        config=asdict(config),
        optical_bands=RGB_BANDS,
        sar_bands=(),
        optical_scale=255.0,
        tile_size=256,
        default_nfe=1,
        training=_training(settings, pairs, seconds, loss="l1", optimizer="adam, one-cycle lr"),
        metrics={"validation_rice2_held_out": metrics or {}},
        description=f"DE reference network {name} (MPRNet layout): trained end to end on RICE2 by "
        "`python -m backend train de-reference`; the frozen visual prior of a DE model.",
    )


def de_card(
    name: str,
    config: DEConfig,
    settings: DESettings,
    reference: str,
    pairs: int = 0,
    metrics: dict[str, float] | None = None,
    seconds: float = 0.0,
) -> ModelCard:
    """The card of a DE model trained here; ``reference`` names the reference network the restorer loads."""
    return ModelCard(
        name=name,
        algorithm="de",
        config=asdict(config),
        optical_bands=RGB_BANDS,
        sar_bands=(),
        optical_scale=255.0,
        tile_size=256,
        default_nfe=settings.val_nfe,
        schedule=DESchedule(settings.schedule, settings.timesteps, settings.w_min),
        reference_model=reference,
        bridge_start=settings.bridge_start,
        training=_training(
            settings,
            pairs,
            seconds,
            loss="mse(eps) + l1(fused x0, WA only)",
            optimizer="adam, one-cycle lr",
            reference_model=reference,
        ),
        metrics={f"validation_rice2_held_out_nfe{settings.val_nfe}": metrics or {}},
        description=f"DE {name}: noise predictor and WA net trained on RICE2 by `python -m backend train de`, "
        f"with the frozen reference network {reference}; not the authors' weights.",
    )


def validation_crops(validation: dict[str, Pairs], size: int) -> Validation:
    """Each held-out set's central ``size`` squares (whole images for 0), keyed by its metrics' suffix."""
    return {RICE_SETS.get(name, f"_{name}"): center_crops(pairs, size) for name, pairs in validation.items()}


def scored(per_set: dict[str, dict[str, float]]) -> dict[str, float]:
    """The sets' metrics, each key with its set's suffix, and ``score``: the mean gain over the cloudy input."""
    metrics = {f"{key}{suffix}": value for suffix, values in per_set.items() for key, value in values.items()}
    gains = [values["psnr_output"] - values["psnr_cloudy"] for values in per_set.values()]
    return {**metrics, "score": sum(gains) / len(gains)}


def evaluate_reference(network: nn.Module, validation: Validation) -> dict[str, float]:
    """Mean per-image PSNR of the reference's output and of the cloudy input vs the clear images, per set."""
    network.eval()
    per_set = {}
    with torch.inference_mode():
        for suffix, (cloudy, clear) in validation.items():
            output = network(cloudy)
            per_set[suffix] = {"psnr_output": mean_psnr(output, clear), "psnr_cloudy": mean_psnr(cloudy, clear)}
    network.train()
    return scored(per_set)


def train_reference(
    config: DEReferenceConfig,
    settings: ReferenceSettings,
    train: Pairs,
    validation: dict[str, Pairs],
    run_dir: Path,
    log: Log = print,
    initial: dict[str, Tensor] | None = None,
) -> tuple[DEReferenceNet, dict[str, float], float]:
    """Train the reference network end to end (L1 on the clear image); resumable from ``run_dir/checkpoint.pt``.

    Returns the EMA that validated best (the start included), its metrics (with its ``step``) and the seconds.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    state = new_state(DEReferenceNet(config), settings.lr, settings.steps, settings.seed, initial)
    held_out = validation_crops(validation, settings.val_crop)
    sizes = crop_sizes(settings.min_crop, settings.crop)

    def step() -> float:
        cloudy, clear = sample_pairs(train, settings.batch, sizes, state.rng)
        loss = F.l1_loss(state.network(cloudy), clear)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        return loss.item()

    _, seconds = run_loop(
        state, settings.steps, settings.eval_every, settings.ema, step,
        lambda ema: evaluate_reference(ema, held_out), run_dir / "checkpoint.pt", log, run_dir / BEST_FILE,
    )  # fmt: skip
    ema = state.ema
    assert isinstance(ema, DEReferenceNet)
    best_step, metrics = load_best(run_dir / BEST_FILE, ema)
    return ema.eval(), {**metrics, "step": best_step}, seconds


def de_loss(network: DENet, reference: nn.Module, alphas: Tensor, cloudy: Tensor, clear: Tensor) -> Tensor:
    """The official DE loss on one batch of (cloudy, clear) reflectance on [0, 1]; ``alphas`` is ᾱ (float64)."""
    x0, cond = clear * 2 - 1, cloudy * 2 - 1
    with torch.no_grad():
        prior = reference(cloudy.clamp(0, 1)) * 2 - 1
    t = torch.randint(0, len(alphas), (len(x0),))
    a = alphas[t].float().view(-1, 1, 1, 1)
    noise = torch.randn_like(x0)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    eps, w = network(x_t, t, cond, prior)
    with torch.no_grad():
        x0_eps = ((x_t - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
    return F.mse_loss(eps, noise) + (x0 - (1 - w) * x0_eps - w * prior).abs().mean()


def training_step(
    network: DENet,
    reference: nn.Module,
    optimizer: torch.optim.Optimizer,
    alphas: Tensor,
    cloudy: Tensor,
    clear: Tensor,
) -> float:
    """One optimiser step of :func:`de_loss` (``reference`` frozen); returns the loss."""
    loss = de_loss(network, reference, alphas, cloudy, clear)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def evaluate_de(
    network: nn.Module, reference: nn.Module, card: ModelCard, validation: Validation, nfe: int, seed: int
) -> dict[str, float]:
    """Mean per-image PSNR of the DE output (the inference restorer), of the reference alone and of the input."""
    network.eval()
    restore = de_restorer(network, card, nfe, seed, reference=reference)
    per_set = {}
    for suffix, (cloudy, clear) in validation.items():
        origins = [(0, index * cloudy.shape[-1]) for index in range(len(cloudy))]
        output = restore(cloudy, None, origins)
        with torch.inference_mode():
            prior = reference(cloudy)
        per_set[suffix] = {
            "psnr_output": mean_psnr(output, clear),
            "psnr_reference": mean_psnr(prior, clear),
            "psnr_cloudy": mean_psnr(cloudy, clear),
        }
    return scored(per_set)


def train_de(
    config: DEConfig,
    settings: DESettings,
    reference: nn.Module,
    reference_name: str,
    train: Pairs,
    validation: dict[str, Pairs],
    run_dir: Path,
    log: Log = print,
    initial: dict[str, Tensor] | None = None,
) -> tuple[DENet, dict[str, float], float]:
    """Train DE's noise predictor and WA net over a frozen reference; resumable from ``run_dir/checkpoint.pt``.

    Returns the EMA that validated best (the start included), its metrics (with its ``step``) and the seconds.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    reference = reference.eval().requires_grad_(False)
    alphas = alphas_cumprod(make_betas(settings.schedule, settings.timesteps))
    state = new_state(DENet(config), settings.lr, settings.steps, settings.seed, initial)
    network = state.network
    assert isinstance(network, DENet)
    held_out = validation_crops(validation, settings.val_crop)
    sizes = crop_sizes(settings.min_crop, settings.crop)
    card = de_card("validation", config, settings, reference_name)

    def step() -> float:
        cloudy, clear = sample_pairs(train, settings.batch, sizes, state.rng)
        return training_step(network, reference, state.optimizer, alphas, cloudy, clear)

    def validate(ema: nn.Module) -> dict[str, float]:
        metrics = evaluate_de(ema, reference, card, held_out, settings.val_nfe, settings.seed)
        ema.train()
        return metrics

    _, seconds = run_loop(
        state, settings.steps, settings.eval_every, settings.ema, step, validate, run_dir / "checkpoint.pt", log,
        run_dir / BEST_FILE,
    )  # fmt: skip
    ema = state.ema
    assert isinstance(ema, DENet)
    best_step, metrics = load_best(run_dir / BEST_FILE, ema)
    return ema.eval(), {**metrics, "step": best_step}, seconds
