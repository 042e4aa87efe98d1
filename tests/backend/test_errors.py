import pytest

from backend import errors
from backend.protocol import ERROR_CODES


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def test_every_user_error_code_is_in_the_protocol():
    codes = {cls.code for cls in subclasses(errors.BackendError)} - {"cancelled"}
    assert codes <= set(ERROR_CODES)


def test_message_is_the_sentence():
    error = errors.NoOverlapError("S1 and S2 do not overlap")
    assert str(error) == error.message == "S1 and S2 do not overlap"
    assert error.code == "no_overlap" and isinstance(error, errors.BadInputError)
    assert errors.BackendError("x", code="custom").code == "custom"
    with pytest.raises(errors.BackendError):
        raise errors.CancelledError()
