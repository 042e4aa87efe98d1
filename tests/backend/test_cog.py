import os

import numpy as np
import pytest
import rasterio

from backend.cog import is_cog, to_cog
from backend.errors import OutputError, UnreadableFileError
from backend.protocol import partial_path
from backend.raster_io import Grid
from backend.writer import open_output


def tiled_output(path, kit, height=700, width=1100, dtype="uint16", nodata=0):
    """A run-like output: the writer's tiled DEFLATE GeoTIFF with band names and tags."""
    from rasterio.crs import CRS

    data = kit.s2_dn(3, height, width).astype(dtype)
    data[:, :20, :30] = 0
    grid = Grid(CRS.from_string("EPSG:32631"), kit.S2_TRANSFORM, width, height)
    tags = {"CLOUD_REMOVAL_MODEL": "tiny"}
    with open_output(path, grid, ["B4", "B3", "B2"], np.dtype(dtype), nodata, tags) as dataset:
        dataset.write(data)
    return data


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_cog_keeps_pixels_and_has_overviews(tmp_path, kit, dtype):
    source, cog = str(tmp_path / "out.tif"), str(tmp_path / "out_cog.tif")
    data = tiled_output(source, kit, dtype=dtype)
    assert not is_cog(source)
    assert to_cog(source, cog) == cog
    assert sorted(os.listdir(tmp_path)) == ["out.tif", "out_cog.tif"]
    with rasterio.open(cog) as dataset:
        np.testing.assert_array_equal(dataset.read(), data)
        assert dataset.overviews(1)[0] == 2
        assert dataset.compression.name.upper() == "DEFLATE"
        assert dataset.block_shapes[0] == (512, 512)
        assert dataset.descriptions == ("B4", "B3", "B2")
        assert dataset.nodata == 0 and dataset.crs.to_epsg() == 32631
        assert dataset.tags()["CLOUD_REMOVAL_MODEL"] == "tiny"
        assert dataset.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    assert is_cog(cog)


def test_cog_may_replace_its_source(tmp_path, kit):
    path = str(tmp_path / "out.tif")
    data = tiled_output(path, kit, height=70, width=90)
    to_cog(path, path, blocksize=32)
    with rasterio.open(path) as dataset:
        np.testing.assert_array_equal(dataset.read(), data)
        assert dataset.overviews(1)[0] == 2
    assert is_cog(path) and os.listdir(tmp_path) == ["out.tif"]


def test_cog_errors_are_sentences(tmp_path, kit):
    with pytest.raises(UnreadableFileError, match="Cannot read"):
        to_cog(str(tmp_path / "missing.tif"), str(tmp_path / "cog.tif"))
    source = str(tmp_path / "out.tif")
    tiled_output(source, kit, height=70, width=90)
    target = str(tmp_path / "nope" / "cog.tif")
    with pytest.raises(OutputError, match="Cannot write"):
        to_cog(source, target)
    assert not os.path.exists(partial_path(target))


def test_a_run_with_cog_writes_a_cog_with_the_plain_runs_pixels(tmp_path, tiny_model, rasters):
    from backend.job import Job
    from backend.reporter import Reporter
    from backend.worker import execute

    outputs = {}
    for cog in (False, True):
        output = str(tmp_path / f"out_{cog}.tif")
        job = Job(
            algorithm="dbcr", optical=rasters["l1c"], sar=rasters["s1_db"], model=tiny_model, output=output,
            device="cpu", threads=1, cog=cog,
        )  # fmt: skip
        assert execute(job, Reporter(events=False)) == 0
        outputs[cog] = output
    assert not is_cog(outputs[False]) and is_cog(outputs[True])
    with rasterio.open(outputs[False]) as plain, rasterio.open(outputs[True]) as cog_file:
        np.testing.assert_array_equal(plain.read(), cog_file.read())
        assert cog_file.tags()["CLOUD_REMOVAL_MODEL"] == "tiny"
    assert not list(tmp_path.glob("*.partial"))
