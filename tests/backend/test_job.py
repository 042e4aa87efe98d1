import dataclasses
import json

import pytest

from backend.errors import BackendError, BadInputError, OutputError
from backend.job import JOB_FIELDS, Job, algorithm_label, read_job_file
from backend.protocol import RUN_SETTINGS


def job(tmp_path, **changes):
    values = {"algorithm": "dbcr", "optical": "in.tif", "output": str(tmp_path / "out.tif")}
    values.update(changes)
    return Job.from_dict(values)


def test_defaults_and_tiling(tmp_path):
    plain = job(tmp_path)
    assert plain.device == "auto" and plain.batch == 4 and plain.sar_scale == "auto" and not plain.l2a_offset
    assert plain.tiling(256) == (256, 64)
    assert job(tmp_path, tile_size=128, overlap=10).tiling(256) == (128, 10)
    assert job(tmp_path, overlap=0).tiling(256) == (256, 0)


def test_round_trip_through_json(tmp_path):
    original = job(tmp_path, sar="s1.tif", nfe=5, sar_bands="2,1", l2a_offset=True)
    again = Job.from_dict(json.loads(json.dumps(original.to_dict())))
    assert again == original and again.sar_bands == (2, 1)
    assert set(original.to_dict()) == set(JOB_FIELDS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nfe": 0}, "NFE must be between 1 and 50, not 0"),
        ({"nfe": 51}, "NFE must be between 1 and 50"),
        ({"tile_size": 100}, "multiple of 16"),
        ({"tile_size": 16}, "Tile size must be between"),
        ({"tile_size": 64, "overlap": 32}, "less than half the tile"),
        ({"overlap": -1}, "Overlap must be between 0 and 2047, not -1"),
        ({"cloud_threshold": 0.995}, "Cloud threshold must be between 0.01 and 0.99"),
        ({"adapt": 5001}, "Adaptation steps must be between 0 and 5000"),
        ({"extra_outputs": "mask"}, "Unknown job field extra_outputs"),
        ({"batch": 0}, "Batch size"),
        ({"device": "gpu"}, "Device must be"),
        ({"sar_scale": "power"}, "SAR scale"),
        ({"sar_bands": "1"}, "SAR bands must be"),
        ({"nfe": "5"}, "whole number"),
        ({"l2a_offset": "yes"}, "true or false"),
        ({"colour": "blue"}, "Unknown job field colour"),
        ({"threads": 0}, "Threads"),
    ],
)
def test_bad_values_are_sentences(tmp_path, changes, message):
    with pytest.raises(BadInputError, match=message) as raised:
        job(tmp_path, **changes)
    assert raised.value.code == "bad_input"


def test_overlap_checked_against_card_tile(tmp_path):
    with pytest.raises(BadInputError, match="less than half"):
        job(tmp_path, overlap=128).tiling(256)


def test_missing_required_fields():
    with pytest.raises(BadInputError, match="no optical"):
        Job.from_dict({"algorithm": "dbcr", "output": "x.tif"})


@pytest.mark.parametrize(
    ("output", "message"),
    [("out.png", "must be a GeoTIFF"), ("nowhere/out.tif", "does not exist"), ("in.tif", "is the optical input")],
)
def test_output_checks(tmp_path, output, message):
    with pytest.raises(OutputError, match=message) as raised:
        Job.from_dict({"algorithm": "dbcr", "optical": str(tmp_path / "in.tif"), "output": str(tmp_path / output)})
    assert raised.value.code == "output"


def test_labels():
    assert algorithm_label("dbcr") == "DB-CR" and algorithm_label("diffcr") == "DiffCR"
    assert algorithm_label("new") == "NEW"


def test_optical_dates_runtime_and_scale(tmp_path):
    output = str(tmp_path / "out.tif")
    dates = ["a.tif", "b.tif"]
    job = Job.from_dict({"algorithm": "diffcr", "optical": dates, "output": output, "runtime": "ONNXRuntime"})
    assert (job.optical, job.extra_optical, job.optical_paths, job.runtime) == (
        "a.tif", ("b.tif",), ("a.tif", "b.tif"), "onnxruntime"
    )  # fmt: skip
    assert Job.from_dict(job.to_dict()) == job
    assert Job.from_dict({"algorithm": "de", "optical": ["a.png"], "output": output}).extra_optical == ()
    bad = [
        ({"optical": ["a", "b", "c", "d"]}, "4 optical rasters given; at most 3"),
        ({"optical": ["a", "b"], "extra_optical": ["c"]}, "either as a list in optical or in extra_optical"),
        ({"optical": "a", "runtime": "tensorrt"}, "Runtime must be torch or onnxruntime"),
        ({"optical": "a", "optical_scale": 0}, "Optical scale must be a positive number"),
        ({"optical": "a", "optical_scale": "255"}, "optical_scale must be a number"),
        ({"optical": [1, 2]}, "must be a file path or a list of file paths"),
        ({"optical": "a", "extra_optical": [output]}, "is the optical input"),
    ]
    for values, sentence in bad:
        with pytest.raises(BackendError, match=sentence):
            Job.from_dict({"algorithm": "diffcr", "output": output, **values})


def test_the_settings_table_is_what_the_job_checks_and_defaults_to(tmp_path):
    defaults = {field.name: field.default for field in dataclasses.fields(Job)}
    for name, setting in RUN_SETTINGS.items():
        assert defaults[name] == setting.default, name
        if setting.minimum is not None:
            job(tmp_path, **{name: setting.kind(setting.minimum)})
            with pytest.raises(BadInputError, match=setting.label):
                job(tmp_path, **{name: setting.kind(setting.minimum - (1 if setting.kind is int else 0.001))})
        if setting.maximum is not None:
            upper = setting.kind(setting.maximum)
            job(tmp_path, **({name: upper, "tile_size": 4096} if name == "overlap" else {name: upper}))
            with pytest.raises(BadInputError, match=setting.label):
                job(tmp_path, **{name: setting.kind(setting.maximum + (1 if setting.kind is int else 0.001))})
        for choice in setting.choices:
            assert getattr(job(tmp_path, **{name: choice}), name) == choice


def test_extra_outputs_are_paths_the_job_names(tmp_path):
    mask, change = str(tmp_path / "m.tif"), str(tmp_path / "c.tif")
    both = job(tmp_path, cloud_mask_output=mask, change_output=change)
    assert both.extra_outputs == {"mask": mask, "change": change}
    assert job(tmp_path).extra_outputs == {} and Job.from_dict(both.to_dict()) == both
    bad = [
        ({"cloud_mask_output": str(tmp_path / "m.png")}, "mask output .* must be a GeoTIFF"),
        ({"change_output": str(tmp_path / "nowhere" / "c.tif")}, "folder of the change output"),
        ({"change_output": str(tmp_path / "out.tif")}, "is an input or the output"),
        ({"cloud_mask_output": mask, "change_output": mask}, "the same file"),
    ]
    for changes, message in bad:
        with pytest.raises(OutputError, match=message):
            job(tmp_path, **changes)


def test_job_file_must_be_one_json_object(tmp_path):
    path = tmp_path / "job.json"
    path.write_text("[1, 2]")
    with pytest.raises(BadInputError, match="must hold one JSON object"):
        read_job_file(str(path))
    with pytest.raises(BackendError, match="Cannot read job file"):
        read_job_file(str(tmp_path / "none.json"))
