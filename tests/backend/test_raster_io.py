import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from backend.bands import S2_L1C_BANDS, S2_L2A_BANDS
from backend.errors import BadInputError, UnreadableFileError
from backend.raster_io import OpticalSource

WHOLE = Window(0, 0, 90, 70)


def open_optical(path, bands=S2_L1C_BANDS, offset=False):
    return OpticalSource(path, bands, 10000.0, offset, "DB-CR", "stand-in")


def test_reads_reflectance_in_model_order(rasters):
    with open_optical(rasters["l1c"]) as source, rasterio.open(rasters["l1c"]) as dataset:
        reflectance, valid = source.read(WHOLE)
        np.testing.assert_allclose(reflectance[4], dataset.read(5) / 10000.0, rtol=1e-6)
        assert valid.all() and reflectance.dtype == np.float32


def test_descriptions_reorder_bands(tmp_path, kit):
    data = kit.s2_dn(13)
    path = kit.write_raster(tmp_path / "rev.tif", data[::-1].copy(), descriptions=tuple(reversed(S2_L1C_BANDS)))
    with open_optical(path) as source:
        reflectance, _ = source.read(WHOLE)
        np.testing.assert_allclose(reflectance * 10000.0, data, rtol=1e-6)
        back = source.encode(reflectance, np.ones((70, 90), bool))
        np.testing.assert_array_equal(back, data[::-1])


def test_l2a_offset_and_nodata(rasters):
    with open_optical(rasters["l2a_nodata"], S2_L2A_BANDS, offset=True) as source:
        reflectance, valid = source.read(WHOLE)
        assert not valid[:10, :15].any() and valid[10:].all()
        assert reflectance.min() >= 0.0  # DN >= 1200 minus the 1000 offset; holes hold the tile's mean
        assert source.nodata == 0 and source.band_map.level == "L2A"
        dn = source.encode(reflectance, valid)
        assert np.all(dn[:, :10, :15] == 0)


def test_encode_rounds_clips_and_never_writes_nodata_for_valid_pixels(rasters):
    with open_optical(rasters["l2a_nodata"], S2_L2A_BANDS) as source:
        reflectance = np.full((12, 2, 2), -0.5, np.float32)
        reflectance[:, 1] = 9.0
        reflectance[:, 0, 1] = 0.12344
        dn = source.encode(reflectance, np.ones((2, 2), bool))
        assert dn.dtype == np.uint16
        assert np.all(dn[:, 0, 0] == 1)  # clipped to 0 = nodata, nudged to 1
        assert np.all(dn[:, 0, 1] == 1234) and np.all(dn[:, 1] == 65535)


def test_internal_mask(tmp_path, kit):
    mask = np.ones((70, 90), bool)
    mask[-5:, -5:] = False
    path = kit.write_raster(tmp_path / "masked.tif", kit.s2_dn(13), mask=mask)
    with open_optical(path) as source:
        _, valid = source.read(WHOLE)
        assert source.has_mask and source.nodata is None
        np.testing.assert_array_equal(valid, mask)


def test_float_nan_is_nodata(tmp_path, kit):
    data = kit.s2_dn(13).astype(np.float32)
    data[:, 0, 0] = np.nan
    path = kit.write_raster(tmp_path / "float.tif", data)
    with open_optical(path) as source:
        reflectance, valid = source.read(WHOLE)
        assert not valid[0, 0] and np.isfinite(reflectance).all()
        assert np.isnan(source.encode(reflectance, valid)[:, 0, 0]).all()


def test_wrong_band_count(rasters):
    with pytest.raises(BadInputError) as raised:
        open_optical(rasters["wrong_bands"])
    assert raised.value.code == "bad_input"
    assert "S2 layer has 4 bands; DB-CR needs" in raised.value.message


def test_unreadable_and_missing_files(rasters, tmp_path):
    with pytest.raises(UnreadableFileError) as raised:
        open_optical(rasters["unreadable"])
    assert raised.value.code == "unreadable_file"
    assert raised.value.message.startswith(f"Cannot read {rasters['unreadable']}: ")
    with pytest.raises(UnreadableFileError, match="does not exist"):
        open_optical(str(tmp_path / "missing.tif"))


def test_check_has_data_refuses_an_all_nodata_raster_and_ignores_alpha(tmp_path, kit):
    from backend.raster_io import check_has_data

    empty = kit.write_raster(tmp_path / "empty.tif", np.zeros((4, 30, 20), np.uint16), nodata=0)
    with pytest.raises(BadInputError, match=r"empty.tif holds no valid pixel \(all nodata: every pixel equals its"):
        check_has_data(empty)
    rgba = np.zeros((4, 30, 20), np.uint8)
    rgba[:3] = 90  # data everywhere, but the alpha band says none of it is valid
    path = kit.write_raster(tmp_path / "rgba.tif", rgba)
    with rasterio.open(path, "r+") as dataset:
        dataset.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    with pytest.raises(BadInputError, match="holds no valid pixel"):
        check_has_data(path)
    check_has_data(kit.write_raster(tmp_path / "full.tif", np.ones((4, 30, 20), np.uint16)))  # no nodata: valid
