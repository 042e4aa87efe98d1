import logging

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from backend.errors import BadInputError, NoOverlapError
from backend.raster_io import Grid
from backend.sar import SAR_FILL, SarSource, detect_scale, to_unit
from models.card import S1_DB_RANGES

WHOLE = Window(0, 0, 90, 70)


@pytest.fixture
def grid(rasters):
    with rasterio.open(rasters["l1c"]) as dataset:
        return Grid(dataset.crs, dataset.transform, dataset.width, dataset.height)


def open_sar(path, grid, scale="auto", bands=None):
    return SarSource(path, grid, ("VV", "VH"), S1_DB_RANGES, scale, bands, "DB-CR")


def expected_unit(db):
    return np.stack([(np.clip(db[0], -25, 0) + 25) / 25, (np.clip(db[1], -32.5, 0) + 32.5) / 32.5])


def test_detect_scale():
    assert detect_scale(np.array([-12.0, -18.0, 1.0])) == "db"
    assert detect_scale(np.array([0.05, 0.2, 0.01])) == "linear"
    assert detect_scale(np.array([np.nan])) == "db"


def test_to_unit_ranges():
    db = np.array([[[-30.0, -25.0, -12.5, 0.0, 3.0]], [[-40.0, -32.5, -16.25, 0.0, 1.0]]], np.float32)
    unit = to_unit(db, "db", [(-25.0, 0.0), (-32.5, 0.0)])
    np.testing.assert_allclose(unit[:, 0], [[0, 0, 0.5, 1, 1]] * 2)
    linear = to_unit(np.array([[[0.1, 0.0]], [[1.0, 0.0]]], np.float32), "linear", [(-25.0, 0.0), (-32.5, 0.0)])
    np.testing.assert_allclose(linear[:, 0], [[15 / 25, 0.0], [1.0, 0.0]], atol=1e-6)


def test_db_on_same_grid(rasters, grid, kit):
    with open_sar(rasters["s1_db"], grid) as sar:
        unit, covered = sar.read(WHOLE)
        assert sar.scale == "db" and sar.coverage == 1.0 and covered.all()
        np.testing.assert_allclose(unit, expected_unit(kit.s1_db()), atol=1e-5)


def test_linear_is_detected_and_matches_db(rasters, grid, kit):
    with open_sar(rasters["s1_linear"], grid) as sar:
        unit, _ = sar.read(WHOLE)
        assert sar.scale == "linear"
        np.testing.assert_allclose(unit, expected_unit(kit.s1_db()), atol=1e-4)


def test_explicit_scale_wins(rasters, grid):
    with open_sar(rasters["s1_linear"], grid, scale="db") as sar:
        assert sar.scale == "db"


def test_other_crs_and_resolution_is_warped(rasters, grid):
    with open_sar(rasters["s1_4326"], grid) as sar:
        unit, covered = sar.read(WHOLE)
        assert sar.coverage == 1.0 and covered.all()
        assert unit.shape == (2, 70, 90) and 0.0 <= unit.min() and unit.max() <= 1.0
        assert unit[0].std() > 0  # real data, not the fill value


def test_partial_overlap_fills_and_warns(rasters, grid, caplog):
    with caplog.at_level(logging.WARNING, logger="backend"), open_sar(rasters["s1_left_half"], grid) as sar:
        unit, covered = sar.read(WHOLE)
    assert 0.4 < sar.coverage < 0.6
    assert covered[:, :44].all() and not covered[:, 46:].any()
    assert np.all(unit[:, :, 46:] == SAR_FILL)
    assert any("S1 covers about 50%" in record.getMessage() for record in caplog.records)


def test_nan_holes_are_filled(tmp_path, grid, kit):
    db = kit.s1_db()
    db[:, 30:40, 30:40] = np.nan
    with open_sar(kit.write_raster(tmp_path / "holes.tif", db), grid) as sar:
        unit, covered = sar.read(WHOLE)
    assert not covered[33:37, 33:37].any() and covered[:20].all()
    assert np.all(unit[:, 33:37, 33:37] == SAR_FILL)


def test_nodata_value_is_respected(tmp_path, grid, kit):
    linear = (10.0 ** (kit.s1_db() / 10.0)).astype(np.float32)
    linear[:, :, :10] = 1e9
    path = kit.write_raster(tmp_path / "nd.tif", linear, nodata=1e9)
    with open_sar(path, grid) as sar:
        _unit, covered = sar.read(WHOLE)
    assert sar.scale == "linear" and not covered[:, :9].any() and covered[:, 11:].all()


def test_no_overlap(rasters, grid):
    with pytest.raises(NoOverlapError) as raised:
        open_sar(rasters["s1_far"], grid)
    assert raised.value.code == "no_overlap"
    assert raised.value.message.startswith("S1 and S2 do not overlap")


def test_one_band(rasters, grid):
    with pytest.raises(BadInputError) as raised:
        open_sar(rasters["s1_one_band"], grid)
    assert raised.value.message == "S1 layer has 1 band; DB-CR needs VV and VH"


def test_integer_sar_is_refused(tmp_path, grid, kit):
    path = kit.write_raster(tmp_path / "grd.tif", np.ones((2, 70, 90), np.uint16))
    with pytest.raises(BadInputError, match="calibrated backscatter"):
        open_sar(path, grid)


def test_descriptions_and_swap_warning(tmp_path, grid, kit, caplog):
    db = kit.s1_db()
    swapped = db[::-1].copy()
    named = kit.write_raster(tmp_path / "named.tif", swapped, descriptions=("VH", "VV"))
    with open_sar(named, grid) as sar:
        assert sar.bands == [2, 1]
        np.testing.assert_allclose(sar.read(WHOLE)[0], expected_unit(db), atol=1e-5)
    plain = kit.write_raster(tmp_path / "plain.tif", swapped)
    with caplog.at_level(logging.WARNING, logger="backend"), open_sar(plain, grid):
        pass
    assert any("give the SAR bands as 2,1" in record.getMessage() for record in caplog.records)
    with open_sar(plain, grid, bands=(2, 1)) as sar:
        assert sar.bands == [2, 1]
