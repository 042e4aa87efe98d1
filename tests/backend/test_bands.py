import pytest

from backend.bands import (
    MISSING_BAND_FILL,
    S2_L1C_BANDS,
    S2_L2A_BANDS,
    input_band_names,
    optical_band_map,
    parse_s2_band,
    parse_sar_band,
    sar_band_indexes,
)
from backend.errors import BadInputError


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("B02", "B2"),
        ("b8a", "B8A"),
        ("B8A", "B8A"),
        ("B4 (red)", "B4"),
        ("Band 4", None),
        ("B13", None),
        ("B08", "B8"),
        ("SCL", None),
        (None, None),
        ("B1_60m", "B1"),
    ],
)
def test_parse_s2_band(text, name):
    assert parse_s2_band(text) == name


@pytest.mark.parametrize(("text", "name"), [("VV", "VV"), ("sigma0_vh", "VH"), ("VV_dB", "VV"), ("HH", None)])
def test_parse_sar_band(text, name):
    assert parse_sar_band(text) == name


def test_names_by_count_without_descriptions():
    assert input_band_names([None] * 13, "DB-CR") == S2_L1C_BANDS
    assert input_band_names([None] * 12, "DB-CR") == S2_L2A_BANDS


def test_wrong_count_sentence():
    with pytest.raises(BadInputError) as raised:
        input_band_names([None] * 4, "DB-CR")
    assert raised.value.code == "bad_input"
    assert str(raised.value) == (
        "S2 layer has 4 bands; DB-CR needs a Sentinel-2 L1C (13 bands) or L2A (12 bands) image"
    )


def test_descriptions_decide_order():
    shuffled = tuple(reversed(S2_L1C_BANDS))
    band_map = optical_band_map(shuffled, S2_L1C_BANDS, "DB-CR", "m")
    assert band_map.input_bands == shuffled
    assert band_map.model_sources[0] == 13  # B1 is the last band of the file
    assert band_map.output_sources[0] == 12  # the file's first band (B12) is model channel 12


def test_duplicate_descriptions_are_refused():
    with pytest.raises(BadInputError, match="more than once"):
        input_band_names(["B2"] * 12, "DB-CR")


def test_l2a_on_l1c_model_fills_b10():
    band_map = optical_band_map([None] * 12, S2_L1C_BANDS, "DB-CR", "m")
    assert band_map.level == "L2A"
    assert band_map.model_sources[10] is None and band_map.fills[10] == MISSING_BAND_FILL["B10"]
    assert len(band_map.read_indexes) == 12 and len(band_map.output_sources) == 12


def test_l1c_on_l2a_model_leaves_b10_out():
    band_map = optical_band_map([None] * 13, S2_L2A_BANDS, "DB-CR", "m")
    assert band_map.dropped == ("B10",) and len(band_map.output_bands) == 12
    assert band_map.output_sources == tuple(range(12))


def test_named_subset_for_a_subset_model():
    band_map = optical_band_map(["B8", "B2", "B3", "B4"], ("B4", "B3", "B2"), "DE", "rgb")
    assert band_map.model_sources == (4, 3, 2) and band_map.output_bands == ("B2", "B3", "B4")
    assert band_map.dropped == ("B8",)
    with pytest.raises(BadInputError, match="lacks band B1, B5"):
        optical_band_map(["B2", "B3", "B4", "B8"], S2_L1C_BANDS, "DB-CR", "m")


def test_sar_bands():
    assert sar_band_indexes([None, None], None, "DB-CR") == ((1, 2), "assumed")
    assert sar_band_indexes(["VH", "VV", "mask"], None, "DB-CR") == ((2, 1), "descriptions")
    assert sar_band_indexes([None, None, None], (2, 1), "DB-CR") == ((2, 1), "explicit")
    with pytest.raises(BadInputError) as raised:
        sar_band_indexes([None], None, "DB-CR")
    assert str(raised.value) == "S1 layer has 1 band; DB-CR needs VV and VH"
    with pytest.raises(BadInputError, match="no band 3"):
        sar_band_indexes([None, None], (1, 3), "DB-CR")
    with pytest.raises(BadInputError, match="two different"):
        sar_band_indexes([None, None], (1, 1), "DB-CR")


def test_rgb_models_map_undescribed_bands_by_position():
    rgb = ("B4", "B3", "B2")
    assert optical_band_map([None] * 3, rgb, "DE", "m").model_sources == (1, 2, 3)
    rgbn = optical_band_map(["red", "green", "blue", "nir"], rgb, "DE", "m")  # names that are no S2 bands
    assert rgbn.model_sources == (1, 2, 3) and rgbn.dropped == ("B8",)
    assert optical_band_map([None] * 3, ("R", "G", "B"), "DE", "m").output_bands == ("R", "G", "B")
    with pytest.raises(BadInputError) as raised:
        optical_band_map([None] * 2, rgb, "DE", "m")
    sentence = "Optical layer has 2 bands; DE model m needs 3 bands (B4, B3, B2 in this order): an RGB image"
    assert str(raised.value) == sentence
    with pytest.raises(BadInputError, match="Optical layer lacks band B8, which model m needs"):
        optical_band_map([None] * 3, (*rgb, "B8"), "DE", "m")
