"""DiffCR, DE, the cloud mask and the shared options, from Processing parameters to the backend command line.

The stand-in backend records the command it was given, writes the outputs it was asked for and reports a cloud
fraction, so these tests need neither torch nor a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsApplication, QgsProcessingContext
from qgis_support import FAKE_BACKEND, SAMPLE_S1, SAMPLE_S2, RecordingFeedback, write_subset


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


def backend_arguments(record: Path) -> list[str]:
    arguments = json.loads(record.read_text())["arguments"]
    return arguments[arguments.index("-c") + 3 :]  # after -c <launcher> <plugin folder>


def test_diffcr_passes_every_date_in_order_and_the_optional_sar(provider: Any, record: Path, tmp_path: Path) -> None:
    second = write_subset(SAMPLE_S2, tmp_path / "date2.tif")
    output = tmp_path / "out.tif"
    _, ok, feedback = run("cloudremoval:diffcr", {"OPTICAL": [str(SAMPLE_S2), str(second)], "OUTPUT": str(output)})
    assert ok, feedback.errors
    arguments = backend_arguments(record)
    assert arguments[:6] == ["run", "diffcr", "--optical", str(SAMPLE_S2), "--optical", str(second)]
    assert "--sar" not in arguments and "--nfe" not in arguments  # no SAR given; NFE: the model card's
    assert arguments[arguments.index("--model") + 1] == "diffcr-lite"

    _, ok, feedback = run(
        "cloudremoval:diffcr", {"OPTICAL": [str(SAMPLE_S2)], "SAR": str(SAMPLE_S1), "NFE": 4, "OUTPUT": str(output)}
    )
    assert ok, feedback.errors
    arguments = backend_arguments(record)
    assert arguments[2:8] == ["--optical", str(SAMPLE_S2), "--sar", str(SAMPLE_S1), "--nfe", "4"]


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
    arguments = backend_arguments(record)
    assert arguments[:8] == ["run", "de", "--optical", str(rgb), "--nfe", "10", "--model", "de-lite"]
    assert "--sar" not in arguments


def test_keep_clear_and_extra_outputs(provider: Any, record: Path, tmp_path: Path) -> None:
    output, mask, change = tmp_path / "out.tif", tmp_path / "chosen-mask.tif", tmp_path / "chosen-change.tif"
    parameters = {
        "OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "KEEP_CLEAR": True, "CLOUD_THRESHOLD": 0.35,
        "RUNTIME": 1, "CLOUD_MASK": str(mask), "CHANGE": str(change), "OUTPUT": str(output),
    }  # fmt: skip
    results, ok, feedback = run("cloudremoval:dbcr", parameters)
    assert ok, feedback.errors
    arguments = backend_arguments(record)
    assert arguments[arguments.index("--runtime") :] == [
        *["--runtime", "onnxruntime", "--keep-clear", "--cloud-threshold", "0.35"],
        *["--extra-outputs", "mask,change", "--output", str(output), "--events"],
    ]
    # the backend writes <output>_cloudmask.tif and <output>_change.tif; they are moved where the user asked
    assert results["CLOUD_MASK"] == str(mask) and mask.is_file()
    assert results["CHANGE"] == str(change) and change.is_file()
    assert not (tmp_path / "out_cloudmask.tif").exists()
    assert results["CLOUD_FRACTION"] == pytest.approx(0.25)


def test_without_extras_nothing_more_is_asked(provider: Any, record: Path, tmp_path: Path) -> None:
    results, ok, feedback = run(
        "cloudremoval:dbcr", {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "OUTPUT": str(tmp_path / "o.tif")}
    )
    assert ok, feedback.errors
    arguments = backend_arguments(record)
    assert not {"--keep-clear", "--cloud-threshold", "--extra-outputs"} & set(arguments)
    assert results["CLOUD_MASK"] is None and results["CLOUD_FRACTION"] is None


def test_cloudmask_writes_both_rasters_and_reports_the_fraction(provider: Any, record: Path, tmp_path: Path) -> None:
    mask, probability = tmp_path / "mask.tif", tmp_path / "probability.tif"
    parameters = {"OPTICAL": str(SAMPLE_S2), "THRESHOLD": 0.5, "DILATION": 3, "MASK": str(mask)}
    results, ok, feedback = run("cloudremoval:cloudmask", {**parameters, "PROBABILITY": str(probability)})
    assert ok, feedback.errors
    assert backend_arguments(record) == [
        *["cloudmask", "--optical", str(SAMPLE_S2), "--probability", str(probability), "--mask", str(mask)],
        *["--threshold", "0.5", "--dilation", "3", "--average-over", "4", "--events"],
    ]
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
    arguments = backend_arguments(record)
    assert arguments[arguments.index("--adapt") + 1] == "25"
    from cloud_removal.processing_provider.compat import FLAG_ADVANCED

    for method in ("diffcr", "de"):  # every method adapts
        algorithm = QgsApplication.processingRegistry().algorithmById(f"cloudremoval:{method}")
        assert algorithm.parameterDefinition("ADAPT").flags() & FLAG_ADVANCED
