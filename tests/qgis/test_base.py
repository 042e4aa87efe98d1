"""Parameters to backend job, checked before any backend runs: inputs must be files, the output a GeoTIFF."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsRasterLayer
from qgis_support import FAKE_BACKEND, SAMPLE_S1, SAMPLE_S2, RecordingFeedback


def run(parameters: dict[str, Any]) -> tuple[bool, list[str]]:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
    feedback = RecordingFeedback()
    _, ok = algorithm.run(parameters, QgsProcessingContext(), feedback)
    return ok, feedback.errors


@pytest.fixture(autouse=True)
def never_the_real_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(FAKE_BACKEND))
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "crash")  # any run that reaches the backend fails these tests


def test_a_layer_that_is_not_a_file_is_refused(provider: Any, tmp_path: Path) -> None:
    tiles = QgsRasterLayer("type=xyz&url=http://localhost:1/{z}/{x}/{y}.png&zmax=19&zmin=0", "Web tiles", "wms")
    assert tiles.isValid()
    ok, errors = run({"OPTICAL": tiles, "SAR": str(SAMPLE_S1), "OUTPUT": str(tmp_path / "out.tif")})
    assert not ok
    assert any("The Sentinel-2 layer 'Web tiles' is not a single raster file on disk" in e for e in errors), errors
    assert any("Save it as a GeoTIFF first" in e for e in errors)


def test_output_must_be_a_geotiff(provider: Any, tmp_path: Path) -> None:
    ok, errors = run({"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "OUTPUT": str(tmp_path / "out.vrt")})
    assert not ok
    assert any("The output must be a GeoTIFF file (.tif), not out.vrt." in e for e in errors), errors


def test_output_may_not_overwrite_an_input(provider: Any, tmp_path: Path) -> None:
    optical = Path(shutil.copy(SAMPLE_S2, tmp_path / "s2.tif"))
    ok, errors = run({"OPTICAL": str(optical), "SAR": str(SAMPLE_S1), "OUTPUT": str(optical)})
    assert not ok
    assert any("would overwrite the input" in e for e in errors), errors
    assert optical.stat().st_size == SAMPLE_S2.stat().st_size


def test_a_missing_weights_file_is_named(provider: Any, tmp_path: Path) -> None:
    weights = tmp_path / "mine.safetensors"
    ok, errors = run(
        {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "MODEL": str(weights), "OUTPUT": str(tmp_path / "o.tif")}
    )
    assert not ok
    assert any(f"The model file {weights} does not exist." in e for e in errors), errors
