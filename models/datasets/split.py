"""Deterministic train/val/test splits that hold out whole places.

Neighbouring patches of one scene share land cover, season and often the same clouds. If one patch of a place trains
and its neighbour tests, the test measures memory, not generalisation. So the unit of splitting is the place (a
SEN12MS-CR scene, a Sen2_MTC tile), never the patch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}


def split_by_place(
    places: Sequence[str], fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0
) -> dict[str, list[int]]:
    """Assign each item to a split so that all items of a place land in the same split.

    The fractions count places, not items. Places are sorted and then shuffled with ``seed``, so the result depends
    only on the set of places and the seed, not on the order items were listed in.

    Args:
        places: the place id of each item (e.g. ``ROIs1158_spring/106``).
        fractions: split name -> share of places; the shares are normalised to sum to 1.
        seed: shuffling seed.

    Returns:
        split name -> sorted indices into ``places``. Every split with a positive share gets at least one place
        when there are enough places.
    """
    if not fractions or any(share < 0 for share in fractions.values()) or sum(fractions.values()) <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {dict(fractions)}")
    unique = sorted(set(places))
    order = np.random.default_rng(seed).permutation(len(unique))
    counts = _place_counts(len(unique), fractions)
    assignment: dict[str, str] = {}
    start = 0
    for name, count in counts.items():
        for position in order[start : start + count]:
            assignment[unique[int(position)]] = name
        start += count
    result: dict[str, list[int]] = {name: [] for name in fractions}
    for index, place in enumerate(places):
        result[assignment[place]].append(index)
    return result


def _place_counts(total: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Whole numbers of places per split: largest remainder, then no positive share left empty if avoidable."""
    norm = sum(fractions.values())
    exact = {name: total * share / norm for name, share in fractions.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(fractions, key=lambda name: exact[name] - counts[name], reverse=True)
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    for name, share in fractions.items():
        if share > 0 and counts[name] == 0:
            donor = max(counts, key=lambda other: counts[other])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[name] += 1
    return counts
