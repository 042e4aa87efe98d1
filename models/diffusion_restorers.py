"""Restorers for DiffCR and DE: a network, its card and the NFE become ``restore(optical, sar, origins)``.

Same contract as ``models.restorers`` (docs/CONTRACTS.md): reflectance in, reflectance out, in the card's band
order; ``origins`` fix each tile's starting noise so overlapping tiles agree and reruns
repeat. Both methods work in [-1, 1]: r → 2r − 1 on the way in, x → (x + 1)/2 on the way out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from models.card import ModelCard
from models.networks import de, diffcr
from models.sampling.ddim import sample_ddim
from models.sampling.dpm_solver import DiscreteVPSchedule, dynamic_thresholding, sample_dpm_solver
from models.sampling.noise_schedules import alphas_cumprod, make_betas
from models.sampling.position_noise import batch_position_noise

Restorer = Callable[[Tensor, Tensor | None, list[tuple[int, int]]], Tensor]
# A torch module or anything called like one (models.onnx_step.OnnxModule).
Network = Callable[..., Any]
# DPM-Solver++ with the official final denoising takes NFE - 1 solver steps: NFE 1 leaves none.
DIFFCR_MIN_NFE = 2
# The noise schedule of a card that names none: each method's official one.
DEFAULT_SCHEDULES = {"diffcr": "sigmoid", "de": "adm-linear"}


def card_betas(card: ModelCard) -> Tensor:
    """β of the noise schedule a DiffCR or DE model was trained on (its card's, else its method's official one)."""
    schedule_card = card.schedule or {}
    name = schedule_card.get("name", DEFAULT_SCHEDULES[card.algorithm])
    return make_betas(str(name), int(schedule_card.get("n_timestep", 1000)))


def _per_date(images: Tensor, per_date: int, dates: int, what: str) -> Tensor:
    """(B, per_date or dates·per_date, H, W) → (B, dates, per_date, H, W); one image is repeated for every date."""
    if images.shape[1] == per_date:
        return images[:, None].expand(-1, dates, -1, -1, -1)
    if images.shape[1] == dates * per_date:
        return images.reshape(images.shape[0], dates, per_date, *images.shape[-2:])
    raise ValueError(f"{what} has {images.shape[1]} bands; this model needs {per_date} per date for {dates} dates")


def diffcr_restorer(network: Network, card: ModelCard, nfe: int, seed: int = 0) -> Restorer:
    """DiffCR: DPM-Solver++ from position noise, conditioned on the cloudy date(s) and optional SAR.

    ``optical`` holds one image (repeated for every date) or the dates stacked band-wise, date after date;
    ``sar`` likewise, when the model has SAR bands.
    """
    if nfe < DIFFCR_MIN_NFE:
        raise ValueError(f"DiffCR needs at least {DIFFCR_MIN_NFE} steps (NFE), not {nfe}")
    config = diffcr.DiffCRConfig.from_dict(card.config)
    schedule_card = card.schedule or {}
    schedule = DiscreteVPSchedule.from_betas(card_betas(card))
    denoise = diffcr.make_denoiser(network, schedule, schedule_card.get("time_input", "gamma"))
    thresholding = schedule_card.get("thresholding")
    correct = (
        (lambda x0: dynamic_thresholding(x0, thresholding["ratio"], thresholding["max_val"])) if thresholding else None
    )

    def restore(optical: Tensor, sar: Tensor | None, origins: list[tuple[int, int]]) -> Tensor:
        dates = _per_date(optical, config.bands, config.dates, "the optical image")
        if config.sar_bands:
            if sar is None:
                raise ValueError(f"this DiffCR model needs {config.sar_bands} SAR bands per date")
            dates = torch.cat([dates, _per_date(sar, config.sar_bands, config.dates, "the SAR image")], dim=2)
        cond = (dates * 2 - 1).flatten(1, 2)
        shape = (config.bands, *optical.shape[-2:])
        with torch.inference_mode():
            x = batch_position_noise(seed, origins, shape, optical.device).to(optical.dtype)
            x0 = sample_dpm_solver(denoise, x, cond, schedule, nfe, correct_x0=correct)
            return (x0 + 1) / 2

    return restore


def de_restorer(
    network: Network, card: ModelCard, nfe: int, seed: int = 0, reference: Network | None = None
) -> Restorer:
    """DE: DDIM from position noise, fusing the reference network's output at every step.

    Args:
        network: the DE noise predictor with its WA net.
        card: its card.
        nfe: DDIM steps.
        seed: seeds the starting noise.
        reference: the frozen reference network; by default the model named in
            ``card.schedule['reference_model']`` is loaded through the registry.

    Raises:
        ValueError: if no reference network is given or named.
    """
    if reference is None:
        name = (card.schedule or {}).get("reference_model")
        if not name:
            raise ValueError("this DE model names no reference network; import one and pass --reference")
        from models.registry import load_model  # late: the registry imports the method modules

        reference, _ = load_model(name)
    schedule_card = card.schedule or {}
    ac = alphas_cumprod(card_betas(card))
    denoise = de.make_denoiser(network, ac, float(schedule_card.get("w_min", de.W_MIN)))
    ref_net = reference

    def restore(optical: Tensor, sar: Tensor | None, origins: list[tuple[int, int]]) -> Tensor:
        del sar  # DE is optical only
        with torch.inference_mode():
            prior = ref_net(optical.clamp(0, 1)) * 2 - 1
            x = batch_position_noise(seed, origins, tuple(optical.shape[1:]), optical.device).to(optical.dtype)
            x0 = sample_ddim(denoise, x, (optical * 2 - 1, prior), ac, nfe)
            return (x0 + 1) / 2

    return restore
