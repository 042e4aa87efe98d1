"""The optical input of a job: one raster, or a few cloudy dates of one place for multi-date models (DiffCR).

The first date is the reference: the output takes its grid, bands, data type, scale and nodata, and its valid
pixels are the ones restored. Further dates are read on its grid: directly when they share it, else warped onto it
(bilinear, as S1 is) when both are georeferenced; dates without georeferencing must have the first one's size.
Every date must have the same bands as the first. Where a further date has no data, the first date's values stand
in for it, so the network sees a cloudy view there rather than a hole.

The restorer receives the dates stacked on the channel axis, date after date, each in the card's band order
(``models.restorers``). A model that refines a temporal fill (``x0_prior = "temporal_fill"``) takes 1 to its number
of dates, the missing ones counting as cloudy everywhere; any other multi-date model takes 1 date (repeated for every
date by the restorer) or exactly its number.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import numpy as np
from rasterio.windows import Window

from backend.errors import BadInputError
from backend.raster_io import OpticalSource
from models.card import ModelCard

log = logging.getLogger(__name__)


def model_dates(card: ModelCard) -> int:
    """Cloudy dates the model stacks (its config's ``dates``; 1 for single-date methods)."""
    return int(card.config.get("dates", 1)) if card.algorithm == "diffcr" else 1


def takes_fewer_dates(card: ModelCard) -> bool:
    """Whether the model takes fewer dates than its own: one whose prior is filled from whichever dates there are."""
    return card.algorithm == "diffcr" and card.x0_prior == "temporal_fill"


def check_date_count(count: int, card: ModelCard, label: str) -> None:
    """Refuse a number of optical rasters the model cannot use (see the module's docstring).

    Raises:
        BadInputError: with a sentence naming what to give.
    """
    dates = model_dates(card)
    if count == 1 or count == dates or (takes_fewer_dates(card) and 1 <= count <= dates):
        return
    if dates == 1:
        raise BadInputError(f"{label} model {card.name} uses one cloudy date; give one optical raster, not {count}")
    if takes_fewer_dates(card):
        raise BadInputError(
            f"{label} model {card.name} uses 1 to {dates} optical rasters of the same place (the first is cleaned); "
            f"not {count}"
        )
    raise BadInputError(
        f"{label} model {card.name} uses {dates} cloudy dates; give {dates} optical rasters of the same place "
        f"(or 1, which is then used for every date), not {count}"
    )


class OpticalDates:
    """The first optical date and any further dates, read window by window on the first one's grid.

    Attributes:
        first: the reference date (grid, bands, dtype, nodata and ``encode`` of the output).
        extras: the further dates, in date order.
    """

    def __init__(
        self,
        paths: Sequence[str],
        card: ModelCard,
        l2a_offset: bool,
        optical_scale: float | None,
        label: str,
    ) -> None:
        """Open every date and check that they fit together and fit the model.

        Args:
            paths: the optical rasters, the first being the reference.
            card: the model card (bands, scale, dates).
            l2a_offset: subtract the 1000 DN offset of Sentinel-2 processing baseline 04.00+ (every date).
            optical_scale: DN that means reflectance 1.0, or None for the card's (see backend.optical_scale).
            label: the method's display name for messages (``DiffCR``).

        Raises:
            BackendError: a date cannot be read, or does not fit the first date or the model.
        """
        check_date_count(len(paths), card, label)
        if takes_fewer_dates(card):
            log.info(
                "%s: %d of the model's %d dates given; the first is cleaned%s",
                label, len(paths), model_dates(card), ", the others fill its clouds" if len(paths) > 1 else
                " (its clouds are filled from the clear ground around them)",
            )  # fmt: skip
        self.first = OpticalSource(
            paths[0], card.optical_bands, card.optical_scale, l2a_offset, label, card.name, explicit_scale=optical_scale
        )
        self.extras: list[OpticalSource] = []
        with contextlib.ExitStack() as guard:
            guard.callback(self.close)
            first_bands = self.first.band_map.input_bands
            for number, path in enumerate(paths[1:], start=2):
                what = f"Optical date {number} ({path})"
                extra = OpticalSource(
                    path,
                    card.optical_bands,
                    card.optical_scale,
                    l2a_offset,
                    label,
                    card.name,
                    explicit_scale=self.first.scale,  # one scale for every date: they are one place, one sensor
                    onto=self.first.grid,
                    what=what,
                )
                self.extras.append(extra)
                bands = extra.band_map.input_bands
                if len(bands) != len(first_bands):
                    raise BadInputError(
                        f"{what} has {len(bands)} bands but the first date has {len(first_bands)}; "
                        "give every date with the same bands"
                    )
            guard.pop_all()

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read one window of every date.

        Returns:
            reflectance: float32 (dates x len(model bands), h, w), the dates stacked date after date.
            valid: bool (h, w), the first date's valid pixels (those the output restores).
        """
        first, valid = self.first.read(window)
        parts = [first]
        for extra in self.extras:
            values, covered = extra.read(window)
            parts.append(np.where(covered[None], values, first))
        return (np.concatenate(parts) if self.extras else first), valid

    def close(self) -> None:
        """Close every date."""
        for source in (self.first, *self.extras):
            source.close()

    def __enter__(self) -> OpticalDates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
