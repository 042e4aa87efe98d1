"""Turn a network and its card into a restorer: the one callable the backend's tiling engine runs per batch.

``restore(optical, sar, origins) -> optical`` (docs/CONTRACTS.md): reflectance in, reflectance out, in the card's
band order. Each method wraps its network once (``models.denoisers``), computes its sampler's steps from the NFE
and runs the sampler; the tiling decides nothing about models. DiffCR and DE work in [-1, 1] (r → 2r − 1 on the
way in, x → (x + 1)/2 on the way out) and start from noise fixed by each tile's ``origins``, so overlapping tiles
agree and reruns repeat. A ``callback(done, total)`` runs after every network evaluation of every batch; an
exception raised from it leaves ``restore`` at once (how the backend cancels within a tile).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from models.card import ModelCard, card_schedule
from models.cloud_fill import SceneFill, filled_start, local_fill, tile_cloud_mask
from models.cloudmask import DEFAULT_THRESHOLD
from models.denoisers import dbcr_denoiser, de_denoiser, diffcr_denoiser
from models.networks.diffcr import DiffCRConfig
from models.sampling.bridge import bridge_steps, sample_bridge
from models.sampling.ddim import ddim_steps, sample_ddim
from models.sampling.dpm_solver import DiscreteVPSchedule, dpm_solver_steps, dynamic_thresholding, sample_dpm_solver
from models.sampling.position_noise import batch_position_noise
from models.sampling.schedule_configs import BridgeSchedule, DESchedule, DiffCRSchedule
from models.sampling.types import StepCallback
from models.temporal_fill import temporal_fill


class Restorer(Protocol):
    """``restore(optical, sar, origins, mask=None) -> optical`` for a batch of tiles.

    ``mask`` (B, 1, H, W), 1 = cloud, is the tiles' cloud mask where the caller already has it (the keep-clear
    pass does); a method that needs one and gets none finds the clouds itself.
    """

    def __call__(
        self, optical: Tensor, sar: Tensor | None, origins: list[tuple[int, int]], mask: Tensor | None = None
    ) -> Tensor:
        """(B, C, T, T) reflectance, (B, S, T, T) SAR in [0, 1] or None, one (row, col) per tile -> reflectance."""
        ...


# A network: a torch module, or anything called like one (models.onnx_step.OnnxModule runs it on ONNX Runtime).
Network = Callable[..., Any]

# Reflectance above this is cloud or glint; the DB-CR recipe clips S2 to [0, 10000] DN before scaling.
MAX_REFLECTANCE = 1.0
# DPM-Solver++ with the official final denoising takes NFE - 1 solver steps: NFE 1 leaves none.
DIFFCR_MIN_NFE = 2


def dbcr_restorer(
    network: Network,
    card: ModelCard,
    nfe: int,
    callback: StepCallback | None = None,
    scene: SceneFill | None = None,
    cloud_threshold: float = DEFAULT_THRESHOLD,
) -> Restorer:
    """The DB-CR bridge: start at the cloudy image and take ``nfe`` deterministic steps.

    With ``card.bridge_start == "local_fill"`` the bridge starts at the cloudy image with its clouds filled from the
    clear ground around them, and the condition is the radar, the cloudy image and its cloud mask
    (:func:`models.cloud_fill.filled_start`), as the model was trained. ``scene`` (the whole scene's coarse fill)
    is where a cloud larger than a tile takes its fill from, so neighbouring tiles agree. Without the caller's
    ``mask`` the clouds are found at ``cloud_threshold``.
    """
    steps = bridge_steps(nfe, card_schedule(card, BridgeSchedule).alphas())
    denoise = dbcr_denoiser(network)

    def restore(
        optical: Tensor, sar: Tensor | None, origins: list[tuple[int, int]], mask: Tensor | None = None
    ) -> Tensor:
        if sar is None:
            raise ValueError("DB-CR needs a SAR image")
        with torch.inference_mode():
            y = optical.clamp(0.0, MAX_REFLECTANCE)
            if card.bridge_start == "local_fill":
                clouds, background = fill_inputs(y, card, origins, mask, scene, cloud_threshold)
                y, sar = filled_start(y, sar, clouds, card.optical_bands, background)
            return sample_bridge(denoise, y, steps, sar, callback)

    return restore


def fill_inputs(
    optical: Tensor,
    card: ModelCard,
    origins: list[tuple[int, int]],
    mask: Tensor | None,
    scene: SceneFill | None,
    cloud_threshold: float,
) -> tuple[Tensor, Tensor | None]:
    """What a local-fill start fills from: the tiles' clouds and the scene's coarse fill under the tiles.

    The clouds are the caller's ``mask``, else found at ``cloud_threshold``; the scene's fill is None without a scene.
    """
    clouds = mask if mask is not None else tile_cloud_mask(optical, card.optical_bands, cloud_threshold)
    size = (optical.shape[-2], optical.shape[-1])
    return clouds, scene.tiles(origins, size).to(optical) if scene is not None else None


def _per_date(images: Tensor, per_date: int, dates: int, what: str) -> Tensor:
    """(B, per_date or dates·per_date, H, W) → (B, dates, per_date, H, W); one image is repeated for every date."""
    if images.shape[1] == per_date:
        return images[:, None].expand(-1, dates, -1, -1, -1)
    if images.shape[1] == dates * per_date:
        return images.reshape(images.shape[0], dates, per_date, *images.shape[-2:])
    raise ValueError(f"{what} has {images.shape[1]} bands; this model needs {per_date} per date for {dates} dates")


def given_dates(optical: Tensor, bands: int, dates: int) -> tuple[Tensor, int]:
    """(B, k·bands, H, W) with 1 <= k <= dates → (B, dates, bands, H, W) and k; missing dates repeat the first.

    Raises:
        ValueError: if the bands are not a whole number of dates, or more dates than the model's.
    """
    given, rest = divmod(optical.shape[1], bands)
    if rest or not 1 <= given <= dates:
        raise ValueError(
            f"the optical image has {optical.shape[1]} bands; this model takes 1 to {dates} dates of {bands}"
        )
    stack = optical.reshape(optical.shape[0], given, bands, *optical.shape[-2:])
    missing = stack[:, :1].expand(-1, dates - given, -1, -1, -1)
    return torch.cat([stack, missing], dim=1), given


def date_clouds(
    dates: Tensor,
    given: int,
    bands: Sequence[str],
    first: Tensor | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> Tensor:
    """(B, T, C, H, W) dates → (B, T, 1, H, W) cloud masks, 1 = cloud.

    Date 0 takes ``first`` where the caller has it, the other given dates s2cloudless at ``threshold``, and the
    dates after the ``given`` ones are cloud everywhere (never used).
    """
    batch = dates.shape[0]
    masks = [first if first is not None else tile_cloud_mask(dates[:, 0], bands, threshold)]
    if given > 1:  # the later dates in one classifier call (a call has a fixed cost)
        later = tile_cloud_mask(dates[:, 1:given].flatten(0, 1), bands, threshold)
        masks += list(later.unflatten(0, (batch, given - 1)).unbind(dim=1))
    masks += [torch.ones_like(masks[0])] * (dates.shape[1] - given)
    return torch.stack([m.to(dates) for m in masks], dim=1)


def diffcr_prior_condition(
    dates: Tensor, given: int, bands: Sequence[str], first: Tensor | None, threshold: float = DEFAULT_THRESHOLD
) -> tuple[Tensor, Tensor]:
    """A prior DiffCR's condition and prior, both in the network's [-1, 1] range (clouds at ``threshold``).

    Returns:
        (B, dates·(bands + 1), H, W), each date's bands then its cloud mask (0 clear, 1 cloud); and (B, bands, H, W),
        the first date with its clouds filled from the other dates (:func:`models.temporal_fill.temporal_fill`).
    """
    clouds = date_clouds(dates, given, bands, first, threshold)
    present = torch.arange(dates.shape[1], device=dates.device) < given
    prior = temporal_fill(dates, clouds, present.expand(dates.shape[0], -1), bands=bands)
    cond = torch.cat([dates * 2 - 1, clouds], dim=2).flatten(1, 2)
    return cond, prior.clamp(0.0, MAX_REFLECTANCE) * 2 - 1


def diffcr_restorer(
    network: Network,
    card: ModelCard,
    nfe: int,
    seed: int = 0,
    callback: StepCallback | None = None,
    cloud_threshold: float = DEFAULT_THRESHOLD,
) -> Restorer:
    """DiffCR: DPM-Solver++ from position noise, conditioned on the cloudy date(s) and optional SAR.

    ``optical`` holds one image (repeated for every date) or the dates stacked band-wise, date after date;
    ``sar`` likewise, when the model has SAR bands. A model with ``card.x0_prior == "temporal_fill"`` takes 1 to
    ``dates`` dates (the missing ones count as cloudy everywhere), sees each date's cloud mask (``mask``, when given,
    is the first date's) and predicts a correction of the temporal fill of the first date's clouds; an untrained one
    returns that fill.
    """
    if nfe < DIFFCR_MIN_NFE:
        raise ValueError(f"DiffCR needs at least {DIFFCR_MIN_NFE} steps (NFE), not {nfe}")
    config = DiffCRConfig.from_dict(card.config)
    with_prior = card.x0_prior == "temporal_fill"
    if with_prior != config.prior:
        raise ValueError(f"the card's x0_prior {card.x0_prior!r} does not fit a network with prior={config.prior}")
    if with_prior and config.sar_bands:
        raise ValueError("a DiffCR model with a temporal-fill prior is optical only; this one has SAR bands")
    schedule = card_schedule(card, DiffCRSchedule)
    vp = DiscreteVPSchedule.from_betas(schedule.betas())
    steps = dpm_solver_steps(nfe, vp)
    denoise = diffcr_denoiser(network, vp, schedule.time_input, prior=with_prior)
    threshold = schedule.thresholding
    correct = (lambda x0: dynamic_thresholding(x0, threshold.ratio, threshold.max_val)) if threshold else None

    def condition(optical: Tensor, sar: Tensor | None, mask: Tensor | None) -> Any:
        if with_prior:
            dates, given = given_dates(optical, config.bands, config.dates)
            return diffcr_prior_condition(dates, given, card.optical_bands, mask, cloud_threshold)
        dates = _per_date(optical, config.bands, config.dates, "the optical image")
        if config.sar_bands:
            if sar is None:
                raise ValueError(f"this DiffCR model needs {config.sar_bands} SAR bands per date")
            dates = torch.cat([dates, _per_date(sar, config.sar_bands, config.dates, "the SAR image")], dim=2)
        return (dates * 2 - 1).flatten(1, 2)

    def restore(
        optical: Tensor, sar: Tensor | None, origins: list[tuple[int, int]], mask: Tensor | None = None
    ) -> Tensor:
        shape = (config.bands, *optical.shape[-2:])
        with torch.inference_mode():
            cond = condition(optical, sar, mask)
            x = batch_position_noise(seed, origins, shape, optical.device).to(optical.dtype)
            x0 = sample_dpm_solver(denoise, x, steps, cond, callback, correct_x0=correct)
            return (x0 + 1) / 2

    return restore


def de_restorer(
    network: Network,
    card: ModelCard,
    nfe: int,
    seed: int = 0,
    reference: Network | None = None,
    callback: StepCallback | None = None,
    scene: SceneFill | None = None,
    cloud_threshold: float = DEFAULT_THRESHOLD,
) -> Restorer:
    """DE: DDIM from position noise, fusing the reference network's output at every step.

    With ``card.bridge_start == "local_fill"`` DE restores the cloudy image with its clouds first filled from the
    clear ground around them (:func:`models.cloud_fill.local_fill`): the reference network and the noise predictor
    both see the filled image. Under thick cloud neither network can see the ground, and the fill gives them the
    colours of the clear ground around it to start from.

    Args:
        network: the DE noise predictor with its WA net.
        card: its card.
        nfe: DDIM steps.
        seed: seeds the starting noise.
        reference: the frozen reference network; by default the model named in ``card.reference_model`` is
            loaded through the registry.
        callback: ``callback(done, total)`` after each evaluation of the DE network.
        scene: with a local-fill start, the whole scene's coarse fill, for clouds larger than a tile.
        cloud_threshold: with a local-fill start and no ``mask`` from the caller, where the clouds are found.

    Raises:
        ValueError: if no reference network is given or named.
    """
    if reference is None:
        if not card.reference_model:
            raise ValueError("this DE model names no reference network; import one and pass --reference")
        from models.registry import load_model  # late: the registry imports the method modules

        reference, _ = load_model(card.reference_model)
    schedule = card_schedule(card, DESchedule)
    ac = schedule.alphas_cumprod()
    steps = ddim_steps(nfe, ac)
    denoise = de_denoiser(network, ac, schedule.w_min)
    ref_net = reference

    def restore(
        optical: Tensor, sar: Tensor | None, origins: list[tuple[int, int]], mask: Tensor | None = None
    ) -> Tensor:
        del sar  # DE is optical only
        with torch.inference_mode():
            if card.bridge_start == "local_fill":
                clouds, background = fill_inputs(optical, card, origins, mask, scene, cloud_threshold)
                optical = local_fill(optical, clouds, background=background)
            prior = ref_net(optical.clamp(0, 1)) * 2 - 1
            x = batch_position_noise(seed, origins, tuple(optical.shape[1:]), optical.device).to(optical.dtype)
            x0 = sample_ddim(denoise, x, steps, (optical * 2 - 1, prior), callback)
            return (x0 + 1) / 2

    return restore


def make_restorer(
    network: Network,
    card: ModelCard,
    nfe: int,
    seed: int = 0,
    reference: Network | None = None,
    callback: StepCallback | None = None,
    scene: SceneFill | None = None,
    cloud_threshold: float = DEFAULT_THRESHOLD,
) -> Restorer:
    """Build the restorer of the card's algorithm.

    Args:
        network: the method's network (torch module or ONNX stand-in).
        card: its card.
        nfe: network evaluations per batch.
        seed: seeds the diffusion methods' starting noise (DB-CR's bridge is deterministic and has none).
        reference: DE only: its reference network, already loaded (else the DE restorer loads the card's).
        callback: ``callback(done, total)`` after every network evaluation of every batch; raise to cancel.
        scene: DB-CR and DE with a local-fill start only: the whole scene's coarse fill (tiles' origins index into
            it).
        cloud_threshold: where a method finds clouds itself (a local-fill DB-CR or DE without the caller's mask, a
            temporal-fill DiffCR's later dates), the cloud probability above which a pixel is cloud.

    Raises:
        ValueError: for an algorithm without a sampler, a reference network given to another method, or a
            card the method cannot run.
    """
    if reference is not None and card.algorithm != "de":
        raise ValueError(f"only DE takes a reference network, not {card.algorithm}")
    if card.algorithm == "dbcr":
        return dbcr_restorer(network, card, nfe, callback, scene, cloud_threshold)
    if card.algorithm == "diffcr":
        return diffcr_restorer(network, card, nfe, seed, callback, cloud_threshold)
    if card.algorithm == "de":
        return de_restorer(network, card, nfe, seed, reference, callback, scene, cloud_threshold)
    raise ValueError(f"no sampler for algorithm {card.algorithm!r}")
