import numpy as np
import pytest
import rasterio

from backend.cli import main
from backend.commands.preview import GAP_PX, rgb_indexes, write_preview
from backend.errors import BadInputError


def read_png(path):
    with rasterio.open(path) as dataset:
        return dataset.read()


def test_same_image_gives_identical_halves(rasters, tmp_path):
    png = str(tmp_path / "p.png")
    assert write_preview(rasters["l1c"], rasters["l1c"], png) == (70, 2 * 90 + GAP_PX)
    image = read_png(png)
    assert image.shape == (3, 70, 188) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[:, :, :90], image[:, :, 90 + GAP_PX :])
    assert image[:, :, :90].std() > 0


def test_shared_stretch_shows_a_brighter_result(rasters, tmp_path, kit):
    brighter = kit.write_raster(tmp_path / "bright.tif", kit.s2_dn(13) + 2000)
    png = str(tmp_path / "p.png")
    write_preview(rasters["l1c"], brighter, png)
    image = read_png(png).astype(float)
    assert image[:, :, 90 + GAP_PX :].mean() > image[:, :, :90].mean() + 50


def test_nodata_is_black_and_max_size_decimates(rasters, tmp_path):
    png = str(tmp_path / "p.png")
    write_preview(rasters["l2a_nodata"], rasters["l2a_nodata"], png)
    assert np.all(read_png(png)[:, :10, :15] == 0)
    assert write_preview(rasters["l1c"], rasters["l1c"], png, max_size=45) == (35, 2 * 45 + GAP_PX)


def test_rgb_bands():
    assert rgb_indexes((None,) * 13) == [4, 3, 2]
    assert rgb_indexes((None,) * 12) == [4, 3, 2]
    assert rgb_indexes(("B2", "B3", "B4", "B8")) == [3, 2, 1]
    assert rgb_indexes((None,) * 3) == rgb_indexes((None,) * 4) == [1, 2, 3]  # unnamed RGB (+ NIR): in order
    with pytest.raises(BadInputError, match="B4, B3, B2"):
        rgb_indexes((None,) * 5)


def test_command(rasters, tmp_path, capsys, kit):
    png = str(tmp_path / "cmd.png")
    assert main(["preview", "--before", rasters["l1c"], "--after", rasters["l1c"], "--png", png]) == 0
    assert "Wrote" in capsys.readouterr().err
    five = kit.write_raster(tmp_path / "five.tif", kit.s2_dn(5))
    assert main(["preview", "--before", five, "--after", rasters["l1c"], "--png", png]) == 2
    assert "Error: Cannot find bands" in capsys.readouterr().err
