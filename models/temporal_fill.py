"""Fill the first date's clouds from other dates of the same place: the prior DiffCR models start from.

:func:`temporal_fill` keeps the first date bit for bit where it is clear. Under its clouds it takes the other dates'
clear pixels, each date first matched to the first date's radiometry (:func:`match_radiometry`: per tile and band,
a gain and offset fitted by least squares on the pixels clear in both), several usable dates combined per pixel
(:data:`COMBINES`; by default the first usable one in date order). Pixels cloudy on every date take
:func:`models.cloud_fill.fill_clouds` of what is filled so far (their likely shadows left out for Sentinel-2).

Dates of another season differ in brightness (sun, phenology, haze) and locally (a field harvested, a shadow); the
matching is what lets a later date stand in under the cloud without showing its edge. Shapes: dates (B, T, C, H, W)
reflectance 0-1, clouds (B, T, 1, H, W) with 1 = cloud, present (B, T) bool (a date that was not given counts as
cloudy everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from models.cloud_fill import fill_clouds, local_fill

# How dates usable at one pixel are combined: their mean, the first of them in date order, or their median (equal to
# the mean for one or two usable dates, i.e. for every model of at most three dates).
COMBINES = ("mean", "nearest", "median")
# How another date is brought onto the first one's radiometry before it stands in. The defaults are the best on the
# real series (docs/training/diffcr-lite-temporal/README.md): a gain and offset, the nearest date in the list.
MATCHINGS = ("local", "gain_offset", "offset", "none")
DEFAULT_COMBINE = "nearest"
DEFAULT_MATCHING = "gain_offset"
# Common clear pixels needed to fit a gain (a 256² tile has 65,536), and an offset alone; fewer: no matching.
MIN_GAIN_PIXELS = 256
MIN_OFFSET_PIXELS = 16
# A fitted gain outside this range means the dates disagree (a change, a missed cloud), not a brightness shift.
GAIN_RANGE = (0.5, 2.0)


def _masked_mean(values: Tensor, weights: Tensor, count: Tensor) -> Tensor:
    return (values * weights).sum(dim=(-2, -1), keepdim=True) / count.clamp(min=1.0)


def fit_gain_offset(source: Tensor, reference: Tensor, common: Tensor) -> tuple[Tensor, Tensor]:
    """Per tile and band, ``reference ≈ gain · source + offset`` by least squares over the ``common`` pixels.

    Args:
        source: (B, C, H, W) the date to match.
        reference: (B, C, H, W) the first date.
        common: (B, 1, H, W) 1 where both are clear.

    Returns:
        gain and offset, (B, C, 1, 1) each: (1, 0) below :data:`MIN_OFFSET_PIXELS` common pixels, gain 1 below
        :data:`MIN_GAIN_PIXELS`, the gain clamped to :data:`GAIN_RANGE`.
    """
    weights = common.to(source.dtype)
    count = weights.sum(dim=(-2, -1), keepdim=True)
    mean_s, mean_r = _masked_mean(source, weights, count), _masked_mean(reference, weights, count)
    cov = _masked_mean((source - mean_s) * (reference - mean_r), weights, count)
    var = _masked_mean((source - mean_s) ** 2, weights, count)
    gain = (cov / var.clamp(min=1e-8)).clamp(*GAIN_RANGE)
    gain = torch.where((count >= MIN_GAIN_PIXELS) & (var > 1e-8), gain, torch.ones_like(gain))
    offset = torch.where(count >= MIN_OFFSET_PIXELS, mean_r - gain * mean_s, torch.zeros_like(mean_r))
    gain = torch.where(count >= MIN_OFFSET_PIXELS, gain, torch.ones_like(gain))
    return gain, offset


def match_radiometry(source: Tensor, reference: Tensor, common: Tensor, matching: str = DEFAULT_MATCHING) -> Tensor:
    """``source`` on ``reference``'s radiometry, fitted where ``common`` (B, 1, H, W) is 1 (see :data:`MATCHINGS`).

    ``local`` adds to the gain/offset match the reference's remaining difference on the common clear ground, filled
    into the rest by push-pull, so the stand-in meets the first date's clear ground around a cloud without a step.
    """
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, not {matching!r}")
    if matching == "none":
        return source
    gain, offset = fit_gain_offset(source, reference, common)
    if matching == "offset":
        weights = common.to(source.dtype)
        count = weights.sum(dim=(-2, -1), keepdim=True)
        shift = _masked_mean(reference - source, weights, count)
        return source + torch.where(count >= MIN_OFFSET_PIXELS, shift, torch.zeros_like(shift))
    matched = gain * source + offset
    if matching == "local" and bool((common > 0).any()):
        residual = torch.where(common > 0, reference - matched, torch.zeros_like(matched))
        matched = matched + local_fill(residual, (common <= 0).to(source.dtype))
    return matched


def _combine(values: Tensor, usable: Tensor, combine: str) -> Tensor:
    """(B, K, C, H, W) candidates and (B, K, 1, H, W) usable → (B, C, H, W), where no candidate is usable: 0."""
    weights = usable.to(values.dtype)
    if combine == "mean":
        return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    if combine == "nearest":
        # The first usable candidate: cumulative count 1 at it, and it usable.
        first = (weights.cumsum(dim=1) == 1) & (usable > 0)
        return (values * first.to(values.dtype)).sum(dim=1)
    if combine == "median":
        stacked = torch.where(usable > 0, values, torch.full_like(values, float("nan")))
        return torch.nan_to_num(torch.nanquantile(stacked, 0.5, dim=1), nan=0.0)
    raise ValueError(f"combine must be one of {COMBINES}, not {combine!r}")


def temporal_fill(
    dates: Tensor,
    clouds: Tensor,
    present: Tensor | None = None,
    combine: str = DEFAULT_COMBINE,
    matching: str = DEFAULT_MATCHING,
    bands: Sequence[str] = (),
) -> Tensor:
    """The first date with its clouds filled from the other dates, then from the clear ground around them.

    Args:
        dates: (B, T, C, H, W) reflectance 0-1, every date on the first one's grid; date 0 is the one filled.
        clouds: (B, T, 1, H, W), 1 (or > 0) = cloud.
        present: (B, T) bool, which dates exist; None: all. A missing date is never used.
        combine: one of :data:`COMBINES`.
        matching: one of :data:`MATCHINGS`.
        bands: the dates' band names; with Sentinel-2's, the fill from the clear ground around a cloud leaves out its
            likely shadow (:func:`models.cloud_fill.fill_clouds`).

    Returns:
        (B, C, H, W): date 0 bit for bit where it is clear; under its clouds, the other dates' matched clear pixels
        combined, and :func:`local_fill` where every date is cloudy.
    """
    if combine not in COMBINES:
        raise ValueError(f"combine must be one of {COMBINES}, not {combine!r}")
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, not {matching!r}")
    batch, count = dates.shape[:2]
    if present is None:
        present = torch.ones(batch, count, dtype=torch.bool, device=dates.device)
    clear = (clouds <= 0) & present.view(batch, count, 1, 1, 1)
    first, first_clear = dates[:, 0], clear[:, 0]
    result = torch.where(first_clear, first, torch.zeros_like(first))
    if count > 1:
        candidates = torch.stack(
            [
                match_radiometry(dates[:, k], first, first_clear & clear[:, k], matching)
                if bool(clear[:, k].any())
                else dates[:, k]
                for k in range(1, count)
            ],
            dim=1,
        )
        usable = clear[:, 1:] & ~first_clear[:, None]
        from_others = _combine(candidates, usable, combine)
        result = torch.where(usable.any(dim=1), from_others, result)
        first_clear = first_clear | usable.any(dim=1)
    # Cloudy on every date: the fill from the ground filled so far (the image as it is where nothing is clear).
    holes = (~first_clear).to(dates.dtype)
    return torch.where(first_clear, result, fill_clouds(torch.where(first_clear, result, first), holes, bands))
