"""Nodata rules: nodata values, NaN and internal masks decide which values hold data."""

import numpy as np
import rasterio
from rasterio.windows import Window

from backend.nodata import band_validity, has_valid_pixel, mask_kind, no_data_error


def test_nodata_values_and_nan_are_invalid(tmp_path, kit):
    data = np.ones((2, 8, 8), np.float32)
    data[0, 0, 0], data[1, 0, 1] = 7.0, np.nan
    path = kit.write_raster(tmp_path / "a.tif", data, nodata=7.0)
    with rasterio.open(path) as dataset:
        raw = dataset.read(out_dtype=np.float32)
        valid = band_validity(dataset, raw, Window(0, 0, 8, 8), dataset.nodata, mask_kind(dataset))
    assert not valid[0, 0, 0] and valid[1, 0, 0] and not valid[1, 0, 1] and valid.sum() == 2 * 64 - 2


def test_an_internal_mask_decides_and_an_all_masked_raster_has_no_valid_pixel(tmp_path, kit):
    mask = np.zeros((8, 8), bool)
    path = kit.write_raster(tmp_path / "m.tif", np.ones((1, 8, 8), np.uint16), mask=mask)
    with rasterio.open(path) as dataset:
        assert mask_kind(dataset)
        assert not has_valid_pixel(dataset, [1], dataset.nodata, True)
    mask[3, 4] = True
    path = kit.write_raster(tmp_path / "n.tif", np.ones((1, 8, 8), np.uint16), mask=mask)
    with rasterio.open(path) as dataset:
        assert has_valid_pixel(dataset, [1], dataset.nodata, True)


def test_the_sentence_names_the_file_and_the_nodata_value():
    message = str(no_data_error("scene.tif", 0.0))
    assert "scene.tif" in message and "nodata value 0" in message
