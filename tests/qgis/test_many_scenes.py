"""Remove clouds from many scenes: the real backend's ``batch`` on two copies of the sample, a rerun, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsApplication, QgsProcessingContext
from qgis_support import (
    SAMPLE_S1,
    SAMPLE_S2,
    RecordingFeedback,
    needs_backend,
    needs_model,
    raster_grid,
    use_real_backend,
)


@pytest.fixture(autouse=True)
def real_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    use_real_backend(monkeypatch)


def run(parameters: dict[str, Any]) -> tuple[dict[str, Any], bool, RecordingFeedback]:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:manyscenes")
    feedback = RecordingFeedback()
    results, ok = algorithm.run(parameters, QgsProcessingContext(), feedback)
    return results, ok, feedback


def two_scenes(folder: Path) -> Path:
    folder.mkdir()
    for name in ("a", "b"):
        shutil.copyfile(SAMPLE_S2, folder / f"{name}_s2.tif")
        shutil.copyfile(SAMPLE_S1, folder / f"{name}_s1.tif")
    scenes = folder / "scenes.csv"
    scenes.write_text("optical,sar,output\na_s2.tif,a_s1.tif,\nb_s2.tif,b_s1.tif,b_clear.tif\n", encoding="utf-8")
    return scenes


@needs_model
@needs_backend("batch", "--scenes", "--out-dir", "--workers")
def test_two_scenes_then_a_rerun_that_skips_them(provider: Any, tmp_path: Path) -> None:
    scenes = two_scenes(tmp_path / "in")
    out = tmp_path / "out"
    parameters = {"METHOD": 0, "SCENES": str(scenes), "WORKERS": 1, "DEVICE": 1, "OUTPUT_FOLDER": str(out)}
    results, ok, feedback = run(parameters)
    assert ok, feedback.errors
    assert results == {"OUTPUT_FOLDER": str(out), "WRITTEN": 2, "SKIPPED": 0, "FAILED": 0}
    written = sorted(path.name for path in out.iterdir())
    assert written == ["a_s2_cloudfree.tif", "b_clear.tif"]
    for name in written:
        assert raster_grid(out / name) == raster_grid(SAMPLE_S2)
    assert feedback.progress[-1] == pytest.approx(100.0)
    assert any(info.startswith("b_clear.tif: written") for info in feedback.infos), feedback.infos
    assert "Scenes: 2 of 2 done" in feedback.infos

    # A rerun skips what is complete; a row whose raster is missing fails by name, after the others.
    with open(scenes, "a", encoding="utf-8") as handle:
        handle.write("missing_s2.tif,a_s1.tif,\n")
    _, ok, feedback = run(parameters)
    assert not ok
    assert any(info.startswith("a_s2_cloudfree.tif: already complete") for info in feedback.infos), feedback.infos
    assert any(error.startswith("missing_s2_cloudfree.tif failed:") for error in feedback.errors), feedback.errors
    assert "1 of 3 scenes failed: missing_s2_cloudfree.tif" in feedback.errors[-1], feedback.errors
    assert sorted(path.name for path in out.iterdir()) == written


@needs_backend("batch", "--scenes", "--out-dir")
def test_a_bad_scene_list_is_one_sentence(provider: Any, tmp_path: Path) -> None:
    scenes = tmp_path / "scenes.csv"
    scenes.write_text("image,radar\na.tif,b.tif\n", encoding="utf-8")
    _, ok, feedback = run({"METHOD": 0, "SCENES": str(scenes), "OUTPUT_FOLDER": str(tmp_path / "out")})
    assert not ok
    assert any("must have the header optical,sar,output" in error for error in feedback.errors), feedback.errors
    assert not any("Traceback" in error for error in feedback.errors)


def test_scenes_are_a_list_or_a_folder_and_db_cr_needs_radar(provider: Any, tmp_path: Path) -> None:
    scenes = two_scenes(tmp_path / "in")
    out = str(tmp_path / "out")
    _, ok, feedback = run({"METHOD": 0, "FOLDER": str(tmp_path / "in"), "OUTPUT_FOLDER": out})
    assert not ok and "DB-CR needs a Sentinel-1 image for each scene" in feedback.errors[-1], feedback.errors
    _, ok, feedback = run({"METHOD": 1, "OUTPUT_FOLDER": out})
    assert not ok and "Give either a scene list (CSV file) or a folder" in feedback.errors[-1], feedback.errors
    _, ok, feedback = run({"METHOD": 1, "SCENES": str(scenes), "FOLDER": str(tmp_path / "in"), "OUTPUT_FOLDER": out})
    assert not ok and "Give either a scene list (CSV file) or a folder" in feedback.errors[-1], feedback.errors
    assert not (tmp_path / "out").exists()
