"""The warm backend worker: one ``serve`` process for the session's removal jobs, cancel, restarts, the fallback.

Against the stand-in backend's ``serve`` mode (the scenario named by the output's file name), then the real one.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException
from qgis_support import (
    FAKE_BACKEND,
    SAMPLE_S1,
    SAMPLE_S2,
    RecordingFeedback,
    needs_model,
    read_raster,
    use_real_backend,
)

STOPPED = "The backend worker stopped (exit code -9); restarting it"


class Feedback(RecordingFeedback):
    """Also keeps warnings."""

    def __init__(self, cancel_after_progress: bool = False) -> None:
        super().__init__(cancel_after_progress)
        self.warnings: list[str] = []

    def pushWarning(self, warning: str) -> None:
        self.warnings.append(warning)


@pytest.fixture
def worker(plugin_package: Any) -> Any:
    """The session's worker, stopped before and after the test."""
    from cloud_removal.processing_provider import warm_worker

    warm_worker.shutdown()
    yield warm_worker
    warm_worker.shutdown()


@pytest.fixture
def fake_serve(monkeypatch: pytest.MonkeyPatch, worker: Any) -> Any:
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(FAKE_BACKEND))
    monkeypatch.setenv("FAKE_BACKEND_SERVE", "1")
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "ok")
    monkeypatch.delenv("CLOUD_REMOVAL_WARM_WORKER", raising=False)
    return worker


def run_dbcr(output: Path, feedback: Feedback, **extra: Any) -> tuple[dict[str, Any], bool]:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
    parameters = {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "OUTPUT": str(output), "DEVICE": 1, **extra}
    return algorithm.run(parameters, QgsProcessingContext(), feedback)


def direct_job(python: Path, output: Path, feedback: Feedback) -> dict[str, Any]:
    from cloud_removal.processing_provider.backend_process import run_job

    return run_job(python, "run", {"algorithm": "dbcr", "optical": str(SAMPLE_S2), "output": str(output)}, output,
                   feedback)  # fmt: skip


def test_jobs_share_one_worker(provider: Any, fake_serve: Any, tmp_path: Path) -> None:
    pids = []
    for name in ("first.tif", "second.tif"):
        feedback = Feedback()
        _, ok = run_dbcr(tmp_path / name, feedback)
        assert ok, feedback.errors
        assert (tmp_path / name).read_bytes() == b"not really a GeoTIFF"
        assert feedback.progress[-4:] == [25.0, 50.0, 75.0, 100.0]
        assert "a line that is not an event" in feedback.infos
        pids.append(fake_serve.WORKER.pid)
        starts = [info for info in feedback.infos if info.startswith("Starting the backend worker")]
        assert len(starts) == (1 if name == "first.tif" else 0), feedback.infos
    assert pids[0] is not None and pids[0] == pids[1]


def test_an_error_is_one_sentence_and_the_worker_goes_on(provider: Any, fake_serve: Any, tmp_path: Path) -> None:
    feedback = Feedback()
    _, ok = run_dbcr(tmp_path / "error.tif", feedback)
    assert not ok
    assert "S1 layer has 1 band; DB-CR needs VV and VH" in feedback.errors[-1]
    pid = fake_serve.WORKER.pid
    _, ok = run_dbcr(tmp_path / "fine.tif", Feedback())
    assert ok and fake_serve.WORKER.pid == pid


def test_cancel_stops_the_job_not_the_worker(provider: Any, fake_serve: Any, tmp_path: Path) -> None:
    run_dbcr(tmp_path / "warm.tif", Feedback())
    pid = fake_serve.WORKER.pid
    feedback = Feedback(cancel_after_progress=True)
    _, ok = run_dbcr(tmp_path / "slow.tif", feedback)
    assert not ok
    assert feedback.cancelled_at is not None and time.monotonic() - feedback.cancelled_at < 2.0
    assert any(error.startswith("Cancelled") for error in feedback.errors), feedback.errors
    assert "The backend stopped and removed its partial output." in feedback.infos
    assert sorted(path.name for path in tmp_path.iterdir()) == ["warm.tif"]  # no output, no .partial
    assert fake_serve.WORKER.pid == pid
    _, ok = run_dbcr(tmp_path / "after.tif", Feedback())
    assert ok and fake_serve.WORKER.pid == pid


def test_a_killed_worker_is_restarted_with_a_warning(provider: Any, fake_serve: Any, tmp_path: Path) -> None:
    run_dbcr(tmp_path / "warm.tif", Feedback())
    pid = fake_serve.WORKER.pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    feedback = Feedback()
    _, ok = run_dbcr(tmp_path / "next.tif", feedback)
    assert ok, feedback.errors
    assert f"{STOPPED}." in feedback.warnings
    assert fake_serve.WORKER.pid not in (None, pid)


def test_a_worker_dying_mid_job_fails_that_job_only(provider: Any, fake_serve: Any, tmp_path: Path) -> None:
    feedback = Feedback()
    _, ok = run_dbcr(tmp_path / "killed.tif", feedback)
    assert not ok
    assert feedback.errors[-1].startswith(STOPPED), feedback.errors
    assert list(tmp_path.iterdir()) == []
    feedback = Feedback()
    _, ok = run_dbcr(tmp_path / "next.tif", feedback)
    assert ok, feedback.errors
    assert feedback.warnings == []  # already told


def test_a_second_run_waits_for_the_first(plugin_package: Any, fake_serve: Any, tmp_path: Path) -> None:
    first_feedback, second_feedback = Feedback(), Feedback()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            direct_job(FAKE_BACKEND, tmp_path / "slow.tif", first_feedback)
        except QgsProcessingException as error:
            outcome["first"] = str(error)

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 10
    while not first_feedback.progress and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first_feedback.progress, first_feedback.infos
    canceller = threading.Timer(0.5, first_feedback.cancel)
    canceller.start()
    direct_job(FAKE_BACKEND, tmp_path / "second.tif", second_feedback)
    thread.join(10)
    assert outcome["first"].startswith("Cancelled")
    assert any("waits for it to end" in info for info in second_feedback.infos), second_feedback.infos
    assert (tmp_path / "second.tif").is_file()


def test_a_backend_without_serve_runs_one_shot(
    provider: Any, fake_serve: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FAKE_BACKEND_SERVE")
    feedback = Feedback()
    _, ok = run_dbcr(tmp_path / "out.tif", feedback)
    assert ok, feedback.errors
    assert any("worker did not start" in info for info in feedback.infos), feedback.infos
    assert fake_serve.WORKER.pid is None


def test_the_warm_worker_can_be_turned_off(
    provider: Any, fake_serve: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOUD_REMOVAL_WARM_WORKER", "0")
    feedback = Feedback()
    _, ok = run_dbcr(tmp_path / "out.tif", feedback)
    assert ok, feedback.errors
    assert not any("backend worker" in info for info in feedback.infos), feedback.infos
    assert fake_serve.WORKER.pid is None


@needs_model
def test_the_real_worker_matches_one_shot_runs(
    provider: Any, worker: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_real_backend(monkeypatch)
    monkeypatch.setenv("CLOUD_REMOVAL_WARM_WORKER", "0")
    _, ok = run_dbcr(tmp_path / "one_shot.tif", Feedback())
    assert ok and worker.WORKER.pid is None
    reference = read_raster(tmp_path / "one_shot.tif")

    monkeypatch.setenv("CLOUD_REMOVAL_WARM_WORKER", "1")
    pids = []
    for name in ("a.tif", "b.tif"):
        feedback = Feedback()
        _, ok = run_dbcr(tmp_path / name, feedback)
        assert ok, feedback.errors
        np.testing.assert_array_equal(read_raster(tmp_path / name), reference)
        pids.append(worker.WORKER.pid)
    assert pids[0] is not None and pids[0] == pids[1]
    assert any("already loaded" in info for info in feedback.infos), feedback.infos

    feedback = Feedback(cancel_after_progress=True)
    _, ok = run_dbcr(tmp_path / "cancelled.tif", feedback, TILE_SIZE=64, OVERLAP=16)
    assert not ok and feedback.cancelled_at is not None, feedback.errors
    assert time.monotonic() - feedback.cancelled_at < 5.0
    assert not (tmp_path / "cancelled.tif").exists()
    assert not (tmp_path / "cancelled.tif.partial").exists()
    assert worker.WORKER.pid == pids[0]

    os.kill(pids[0], signal.SIGKILL)
    time.sleep(0.2)
    feedback = Feedback()
    _, ok = run_dbcr(tmp_path / "c.tif", feedback)
    assert ok, feedback.errors
    assert f"{STOPPED}." in feedback.warnings
    assert worker.WORKER.pid not in (None, pids[0])
    np.testing.assert_array_equal(read_raster(tmp_path / "c.tif"), reference)
