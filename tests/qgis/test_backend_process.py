"""The runner against a stand-in backend: events to feedback, errors to sentences, cancel, no half files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsApplication, QgsProcessingContext
from qgis_support import FAKE_BACKEND, SAMPLE_S1, SAMPLE_S2, RecordingFeedback, needs_model


def run_dbcr(output: Path, feedback: RecordingFeedback, **extra: Any) -> tuple[dict[str, Any], bool]:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
    parameters = {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "OUTPUT": str(output), **extra}
    context = QgsProcessingContext()
    return algorithm.run(parameters, context, feedback)


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(FAKE_BACKEND))
    return lambda scenario: monkeypatch.setenv("FAKE_BACKEND_SCENARIO", scenario)


def test_success_relays_progress_and_returns_output(provider: Any, fake_backend: Any, tmp_path: Path) -> None:
    fake_backend("ok")
    output = tmp_path / "out.tif"
    feedback = RecordingFeedback()
    results, ok = run_dbcr(output, feedback)
    assert ok, feedback.errors
    assert results["OUTPUT"] == str(output)
    assert output.read_bytes() == b"not really a GeoTIFF"
    assert feedback.progress[-4:] == [25.0, 50.0, 75.0, 100.0]  # including the line split across two writes
    assert "a line that is not an event" in feedback.infos


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("error", "S1 layer has 1 band; DB-CR needs VV and VH"),
        ("crash", "internal error (exit code 1): ZeroDivisionError: division by zero"),
        ("missing_module", "is incomplete (No module named 'torch'). Repair it from the Cloud removal panel"),
        ("killed", "The backend process was killed before it finished"),
    ],
)
def test_failures_end_in_one_clear_sentence(
    provider: Any, fake_backend: Any, tmp_path: Path, scenario: str, expected: str
) -> None:
    fake_backend(scenario)
    output = tmp_path / "out.tif"
    output.write_bytes(b"stale result of an earlier run")
    feedback = RecordingFeedback()
    _, ok = run_dbcr(output, feedback)
    assert not ok
    assert any(expected in error for error in feedback.errors), feedback.errors
    assert not any("Traceback" in error for error in feedback.errors)
    assert list(tmp_path.iterdir()) == []


def test_missing_backend_says_how_to_set_it_up(provider: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(tmp_path / "no-such-env" / "bin" / "python"))
    feedback = RecordingFeedback()
    _, ok = run_dbcr(tmp_path / "out.tif", feedback)
    assert not ok
    assert any("backend is not set up" in e and "“Set up backend…”" in e for e in feedback.errors), feedback.errors
    assert not (tmp_path / "out.tif").exists()


def test_cancel_stops_the_backend_quickly_and_leaves_no_file(provider: Any, fake_backend: Any, tmp_path: Path) -> None:
    fake_backend("slow")
    output = tmp_path / "out.tif"
    feedback = RecordingFeedback(cancel_after_progress=True)
    started = time.monotonic()
    _, ok = run_dbcr(output, feedback)
    ended = time.monotonic()
    assert not ok
    assert feedback.cancelled_at is not None
    assert ended - feedback.cancelled_at < 2.0, "the backend kept running after Cancel"
    assert ended - started < 10.0
    assert any(error.startswith("Cancelled") for error in feedback.errors), feedback.errors
    assert list(tmp_path.iterdir()) == []  # neither the output nor its .partial file


def test_launcher_runs_backend_module_in_plugin_folder_without_qgis_pythonpath(
    plugin_package: Any, tmp_path: Path
) -> None:
    from cloud_removal.processing_provider import backend_process as runner

    package = tmp_path / "backend"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import json, os, sys\nprint(json.dumps([os.getcwd(), sys.argv[1:], os.environ.get('PYTHONPATH'), "
        "sys.path[:3]]))\n"
    )
    program, arguments = runner.backend_command(Path(sys.executable), ["run", "dbcr", "--events"], tmp_path)
    completed = subprocess.run(
        [program, *arguments],
        env={"PYTHONPATH": "/usr/share/qgis/python", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    cwd, argv, _, path = json.loads(completed.stdout)
    assert Path(cwd) == tmp_path
    assert argv == ["run", "dbcr", "--events"]
    assert "/usr/share/qgis/python" not in path  # -E: QGIS's PYTHONPATH stays out of the backend


@needs_model
def test_cancel_stops_the_real_backend_and_leaves_no_file(provider: Any, tmp_path: Path) -> None:
    output = tmp_path / "out.tif"
    feedback = RecordingFeedback(cancel_after_progress=True)
    # Small tiles make many of them, so Cancel lands while the backend is still working.
    _, ok = run_dbcr(output, feedback, TILE_SIZE=64, OVERLAP=16, DEVICE=1)
    ended = time.monotonic()
    assert not ok
    assert feedback.cancelled_at is not None, feedback.errors
    assert ended - feedback.cancelled_at < 3.0, "the backend kept running after Cancel"
    assert list(tmp_path.iterdir()) == []
