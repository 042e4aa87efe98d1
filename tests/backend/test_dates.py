"""backend.dates: how many optical rasters a model takes."""

import pytest

from backend.dates import check_date_count, takes_fewer_dates
from backend.errors import BadInputError
from models.card import ModelCard


def _card(dates: int, prior: str) -> ModelCard:
    return ModelCard(name="m", algorithm="diffcr", config={"dates": dates}, x0_prior=prior)


def test_a_temporal_fill_model_takes_one_to_its_dates():
    card = _card(3, "temporal_fill")
    assert takes_fewer_dates(card)
    for count in (1, 2, 3):
        check_date_count(count, card, "DiffCR")
    with pytest.raises(BadInputError, match="uses 1 to 3 optical rasters"):
        check_date_count(4, card, "DiffCR")


def test_other_multi_date_models_take_one_or_exactly_their_dates():
    card = _card(3, "none")
    assert not takes_fewer_dates(card)
    check_date_count(1, card, "DiffCR")
    check_date_count(3, card, "DiffCR")
    with pytest.raises(BadInputError, match="uses 3 cloudy dates; give 3 optical rasters"):
        check_date_count(2, card, "DiffCR")
    with pytest.raises(BadInputError, match="uses one cloudy date"):
        check_date_count(2, ModelCard(name="d", algorithm="dbcr", config={}), "DB-CR")
