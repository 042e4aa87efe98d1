import os

import numpy as np
import pytest

from backend.batch import expected_tags, is_complete, read_scenes
from backend.errors import BadInputError, ModelError
from backend.job import Job
from backend.protocol import partial_path

SETTINGS = {"algorithm": "dbcr", "device": "cpu"}


def scene_list(tmp_path, text):
    path = tmp_path / "scenes.csv"
    path.write_text(text)
    return str(path)


def test_rows_make_jobs_with_dates_default_names_and_relative_paths(tmp_path):
    csv = scene_list(
        tmp_path,
        "optical,sar,output\na.tif,s1.tif,\nd1.tif; /abs/d2.tif,,dates.tif\n\na.tif,s1.tif,x.tif\n",
    )
    out = str(tmp_path)
    first, dates, third = read_scenes(csv, out, {**SETTINGS, "optical": "ignored.tif", "output": "ignored.tif"})
    assert first.name == "a_cloudfree.tif" and first.row == 2
    assert first.job.optical == str(tmp_path / "a.tif") and first.job.sar == str(tmp_path / "s1.tif")
    assert first.job.output == str(tmp_path / "a_cloudfree.tif") and first.job.device == "cpu"
    assert dates.job.optical_paths == (str(tmp_path / "d1.tif"), "/abs/d2.tif") and dates.job.sar is None
    assert third.name == "x.tif" and third.row == 5


def test_a_bad_row_is_a_scene_with_its_problem(tmp_path):
    csv = scene_list(tmp_path, "optical,output\n,none.tif\na.tif,x.png\n")
    missing, wrong = read_scenes(csv, "/out", SETTINGS)
    assert missing.job is None and "Line 2 names no optical raster" in missing.problem
    assert wrong.job is None and wrong.problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,radar\na.tif,b.tif\n", "must have the header optical,sar,output"),
        ("optical,sar,output\n", "lists no scene"),
        ("optical\na.tif\na.tif\n", "Lines 2 and 3 .* both write a_cloudfree.tif"),
    ],
)
def test_scene_list_errors(tmp_path, text, message):
    with pytest.raises(BadInputError, match=message):
        read_scenes(scene_list(tmp_path, text), "/out", SETTINGS)


def test_complete_means_no_partial_and_the_same_tags(tmp_path, kit, tiny_model):
    job = Job(algorithm="dbcr", optical="a.tif", output=str(tmp_path / "out.tif"), model=tiny_model, seed=3)
    tags = expected_tags(job)
    assert tags["CLOUD_REMOVAL_MODEL"] == "tiny" and tags["CLOUD_REMOVAL_SEED"] == "3"
    assert not is_complete(job.output, tags)
    kit.write_raster(tmp_path / "out.tif", np.zeros((1, 4, 4), np.uint16))
    assert not is_complete(job.output, tags)
    import rasterio

    with rasterio.open(job.output, "r+") as dataset:
        dataset.update_tags(**tags)
    assert is_complete(job.output, tags)
    assert not is_complete(job.output, {**tags, "CLOUD_REMOVAL_SEED": "4"})
    open(partial_path(job.output), "w").close()
    assert not is_complete(job.output, tags)
    os.remove(partial_path(job.output))
    (tmp_path / "out.tif").write_text("half a file")
    assert not is_complete(job.output, tags)


def test_expected_tags_need_a_model_card(tmp_path):
    with pytest.raises(ModelError, match="Cannot read the card"):
        expected_tags(Job(algorithm="dbcr", optical="a", output="o.tif", model=str(tmp_path / "none.safetensors")))
