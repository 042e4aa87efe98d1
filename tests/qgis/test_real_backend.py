"""The algorithms against the real backend (``.venv``): cloud mask, keep-clear, extra outputs, DiffCR and DE.

Each test skips only while what it needs is missing: a backend command or flag (detected from ``--help``, so the
tests turn on by themselves when the backend gains it) or a shipped model's weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qgis.core import QgsApplication, QgsProcessingContext
from qgis_support import (
    SAMPLE_RGB,
    SAMPLE_S1,
    SAMPLE_S2,
    RecordingFeedback,
    needs_backend,
    needs_model,
    needs_weights,
    raster_grid,
    read_raster,
    use_real_backend,
)


@pytest.fixture(autouse=True)
def real_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    use_real_backend(monkeypatch)


def run(algorithm_id: str, parameters: dict[str, Any]) -> tuple[dict[str, Any], RecordingFeedback]:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    feedback = RecordingFeedback()
    results, ok = algorithm.run(parameters, QgsProcessingContext(), feedback)
    assert ok, feedback.errors
    return results, feedback


@needs_backend("cloudmask", "--probability", "--mask", "--dilation")
def test_cloud_mask_of_the_sample(provider: Any, tmp_path: Path) -> None:
    mask, probability = tmp_path / "mask.tif", tmp_path / "probability.tif"
    results, feedback = run(
        "cloudremoval:cloudmask", {"OPTICAL": str(SAMPLE_S2), "MASK": str(mask), "PROBABILITY": str(probability)}
    )
    grid = raster_grid(SAMPLE_S2)
    for path, dtype in ((mask, "Byte"), (probability, "Float32")):
        written = raster_grid(path)
        assert (written["crs"], written["transform"], written["size"]) == (grid["crs"], grid["transform"], grid["size"])
        assert (written["bands"], written["dtype"]) == (1, dtype)
    assert set(np.unique(read_raster(mask))) <= {0, 1, 255}
    assert 0.05 < results["CLOUD_FRACTION"] < 0.8  # the sample is about 30 % cloud
    assert any(info.startswith("Cloud cover:") for info in feedback.infos)  # the backend's words, relayed


@needs_model
@needs_backend("run", "--keep-clear", "--cloud-threshold")
def test_keep_clear_reports_the_cloud_fraction_and_keeps_clear_pixels(provider: Any, tmp_path: Path) -> None:
    output = tmp_path / "out.tif"
    parameters = {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "KEEP_CLEAR": True, "TILE_SIZE": 128}
    results, _ = run("cloudremoval:dbcr", {**parameters, "DEVICE": 1, "OUTPUT": str(output)})
    assert 0.05 < results["CLOUD_FRACTION"] < 0.8
    changed = np.any(read_raster(output) != read_raster(SAMPLE_S2), axis=0)
    assert changed.mean() < 0.95  # most clear pixels are the input's own


@needs_model
@needs_backend("run", "--cloud-mask-output", "--change-output")
def test_extra_outputs_land_where_asked(provider: Any, tmp_path: Path) -> None:
    mask, change = tmp_path / "mask.tif", tmp_path / "change.tif"
    parameters = {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "CLOUD_MASK": str(mask), "CHANGE": str(change)}
    results, _ = run("cloudremoval:dbcr", {**parameters, "DEVICE": 1, "OUTPUT": str(tmp_path / "out.tif")})
    assert results["CLOUD_MASK"] == str(mask) and results["CHANGE"] == str(change)
    assert raster_grid(mask)["size"] == raster_grid(change)["size"] == raster_grid(SAMPLE_S2)["size"]


@needs_weights("diffcr-lite")
def test_diffcr_on_the_sample_needs_no_s1(provider: Any, tmp_path: Path) -> None:
    output = tmp_path / "out.tif"
    parameters = {"OPTICAL": [str(SAMPLE_S2)], "NFE": 2, "TILE_SIZE": 128, "DEVICE": 1}
    run("cloudremoval:diffcr", {**parameters, "OUTPUT": str(output)})
    assert raster_grid(output) == raster_grid(SAMPLE_S2)
    change = np.abs(read_raster(output).astype(float) - read_raster(SAMPLE_S2).astype(float))
    assert change.max() > 0 and np.median(change) == 0  # the clouds are filled, the clear ground is kept


@needs_weights("de-lite")
def test_de_on_the_rgb_sample(provider: Any, tmp_path: Path) -> None:
    output = tmp_path / "out.tif"
    parameters = {"OPTICAL": str(SAMPLE_RGB), "NFE": 2, "TILE_SIZE": 128, "DEVICE": 1, "OUTPUT": str(output)}
    run("cloudremoval:de", parameters)
    grid = raster_grid(output)
    assert (grid["size"], grid["bands"], grid["dtype"]) == ((256, 256), 3, "Byte")
    change = np.abs(read_raster(output).astype(float) - read_raster(SAMPLE_RGB).astype(float))
    assert change.mean() > 1  # the model changed it
