"""DiffCR, DE, the cloud mask and the shared options, from Processing parameters to the backend job.

The stand-in backend records the command and the JSON job it was given, writes the outputs the job names and
reports a cloud fraction, so these tests need neither torch nor a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsApplication, QgsProcessingContext
from qgis_support import FAKE_BACKEND, SAMPLE_S1, SAMPLE_S2, RecordingFeedback, recorded_call, write_subset


@pytest.fixture
def record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "call.json"
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(FAKE_BACKEND))
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "ok")
    monkeypatch.setenv("FAKE_BACKEND_RECORD", str(path))
    return path


def run(algorithm_id: str, parameters: dict[str, Any]) -> tuple[dict[str, Any], bool, RecordingFeedback]:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    feedback = RecordingFeedback()
    results, ok = algorithm.run(parameters, QgsProcessingContext(), feedback)
    return results, ok, feedback


def backend_job(record: Path, command: str = "run") -> dict[str, Any]:
    arguments, job = recorded_call(record)
    assert arguments[:2] == [command, "--job"] and arguments[3:] == ["--events"]  # no flag spells a setting
    assert not Path(arguments[2]).exists()  # the job file is removed after the run
    return job


def test_diffcr_passes_every_date_in_order_and_the_optional_sar(provider: Any, record: Path, tmp_path: Path) -> None:
    second = write_subset(SAMPLE_S2, tmp_path / "date2.tif")
    output = tmp_path / "out.tif"
    _, ok, feedback = run("cloudremoval:diffcr", {"OPTICAL": [str(SAMPLE_S2), str(second)], "OUTPUT": str(output)})
    assert ok, feedback.errors
    job = backend_job(record)
    assert job["algorithm"] == "diffcr" and job["optical"] == [str(SAMPLE_S2), str(second)]
    assert "sar" not in job and "nfe" not in job  # no SAR given; NFE: the model card's
    assert job["model"] == "diffcr-lite"

    _, ok, feedback = run(
        "cloudremoval:diffcr", {"OPTICAL": [str(SAMPLE_S2)], "SAR": str(SAMPLE_S1), "NFE": 4, "OUTPUT": str(output)}
    )
    assert ok, feedback.errors
    job = backend_job(record)
    assert (job["optical"], job["sar"], job["nfe"]) == ([str(SAMPLE_S2)], str(SAMPLE_S1), 4)


def test_diffcr_refuses_more_dates_than_it_takes(provider: Any, record: Path, tmp_path: Path) -> None:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:diffcr")
    parameters = {"OPTICAL": [str(SAMPLE_S2)] * 4, "OUTPUT": str(tmp_path / "out.tif")}
    ok, message = algorithm.checkParameterValues(parameters, QgsProcessingContext())
    assert not ok
    assert message == "DiffCR takes 1 to 3 cloudy dates; 4 were given."


def test_de_takes_an_rgb_image_and_no_sar(provider: Any, record: Path, tmp_path: Path) -> None:
    rgb = write_subset(SAMPLE_S2, tmp_path / "rgb.tif", bands=[4, 3, 2])
    _, ok, feedback = run("cloudremoval:de", {"OPTICAL": str(rgb), "OUTPUT": str(tmp_path / "out.tif")})
    assert ok, feedback.errors
    job = backend_job(record)
    assert {key: job[key] for key in ("algorithm", "optical", "nfe", "model")} == {
        "algorithm": "de", "optical": str(rgb), "nfe": 10, "model": "de-lite"
    }  # fmt: skip
    assert "sar" not in job


def test_keep_clear_and_extra_outputs(provider: Any, record: Path, tmp_path: Path) -> None:
    output, mask, change = tmp_path / "out.tif", tmp_path / "chosen-mask.tif", tmp_path / "chosen-change.tif"
    parameters = {
        "OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "KEEP_CLEAR": True, "CLOUD_THRESHOLD": 0.35,
        "RUNTIME": 1, "CLOUD_MASK": str(mask), "CHANGE": str(change), "OUTPUT": str(output),
    }  # fmt: skip
    results, ok, feedback = run("cloudremoval:dbcr", parameters)
    assert ok, feedback.errors
    job = backend_job(record)
    assert {key: job[key] for key in ("runtime", "keep_clear", "cloud_threshold", "output")} == {
        "runtime": "onnxruntime", "keep_clear": True, "cloud_threshold": pytest.approx(0.35), "output": str(output)
    }  # fmt: skip
    # the job names where the extra outputs go, and the backend writes them there
    assert (job["cloud_mask_output"], job["change_output"]) == (str(mask), str(change))
    assert results["CLOUD_MASK"] == str(mask) and mask.is_file()
    assert results["CHANGE"] == str(change) and change.is_file()
    assert sorted(path.name for path in tmp_path.glob("*.tif")) == ["chosen-change.tif", "chosen-mask.tif", "out.tif"]
    assert results["CLOUD_FRACTION"] == pytest.approx(0.25)


def test_without_extras_nothing_more_is_asked(provider: Any, record: Path, tmp_path: Path) -> None:
    results, ok, feedback = run(
        "cloudremoval:dbcr", {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "OUTPUT": str(tmp_path / "o.tif")}
    )
    assert ok, feedback.errors
    job = backend_job(record)
    assert job["keep_clear"] is True and job["adapt"] == 0  # clear ground untouched by default
    assert job["cloud_threshold"] == pytest.approx(0.4)
    assert not {"cloud_mask_output", "change_output", "tile_size", "overlap"} & set(job)
    assert results["CLOUD_MASK"] is None and results["CLOUD_FRACTION"] == pytest.approx(0.25)


def test_cloudmask_writes_both_rasters_and_reports_the_fraction(provider: Any, record: Path, tmp_path: Path) -> None:
    mask, probability = tmp_path / "mask.tif", tmp_path / "probability.tif"
    parameters = {"OPTICAL": str(SAMPLE_S2), "THRESHOLD": 0.5, "DILATION": 3, "MASK": str(mask)}
    results, ok, feedback = run("cloudremoval:cloudmask", {**parameters, "PROBABILITY": str(probability)})
    assert ok, feedback.errors
    assert backend_job(record, "cloudmask") == {
        "optical": str(SAMPLE_S2), "probability": str(probability), "mask": str(mask), "threshold": 0.5,
        "dilation": 3, "average_over": 4,
    }  # fmt: skip
    assert results == {"MASK": str(mask), "PROBABILITY": str(probability), "CLOUD_FRACTION": pytest.approx(0.25)}


@pytest.mark.parametrize("algorithm_id", ["cloudremoval:dbcr", "cloudremoval:diffcr", "cloudremoval:de"])
def test_a_missing_backend_is_refused_before_running(
    provider: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, algorithm_id: str
) -> None:
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(tmp_path / "nowhere" / "python"))
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    optical = [str(SAMPLE_S2)] if algorithm_id.endswith("diffcr") else str(SAMPLE_S2)
    parameters = {"OPTICAL": optical, "SAR": str(SAMPLE_S1), "OUTPUT": str(tmp_path / "out.tif")}
    ok, message = algorithm.checkParameterValues(parameters, QgsProcessingContext())
    assert not ok
    assert message.startswith("The cloud-removal backend is not set up")
    assert "Set up backend…" in message


def test_adapt_is_passed_to_the_backend(provider: Any, record: Path, tmp_path: Path) -> None:
    parameters = {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "ADAPT": 25, "OUTPUT": str(tmp_path / "o.tif")}
    _, ok, feedback = run("cloudremoval:dbcr", parameters)
    assert ok, feedback.errors
    assert backend_job(record)["adapt"] == 25
    from cloud_removal.processing_provider.compat import FLAG_ADVANCED

    for method in ("diffcr", "de"):  # every method adapts
        algorithm = QgsApplication.processingRegistry().algorithmById(f"cloudremoval:{method}")
        assert algorithm.parameterDefinition("ADAPT").flags() & FLAG_ADVANCED


def test_a_tile_size_the_backend_refuses_is_refused_up_front(provider: Any, record: Path, tmp_path: Path) -> None:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
    parameters = {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "OUTPUT": str(tmp_path / "o.tif")}
    for tile, sentence in ((100, "Tile size must be a multiple of 16 pixels, not 100"), (16, "between 32 and 4096")):
        ok, message = algorithm.checkParameterValues({**parameters, "TILE_SIZE": tile}, QgsProcessingContext())
        assert not ok and sentence in message and "0 uses the model's own" in message
    assert algorithm.checkParameterValues({**parameters, "TILE_SIZE": 128}, QgsProcessingContext())[0]
    assert algorithm.checkParameterValues({**parameters, "TILE_SIZE": 0}, QgsProcessingContext())[0]
