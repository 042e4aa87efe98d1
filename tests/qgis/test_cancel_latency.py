"""A Processing cancel in the middle of a real DB-CR run: the run ends, with nothing left behind.

The seconds from Cancel to the algorithm's return are printed (``-s``), never asserted (the machine is shared).
``CLOUDREMOVAL_CANCEL_SIZE=2048`` measures on a 2048 x 2048 mosaic of the sample (default 512, to stay quick).
Both paths: the warm worker (the default: the job is cancelled, the worker lives on) and one process per job
(``CLOUD_REMOVAL_WARM_WORKER=0``: QgsBlockingProcess terminates it).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback
from qgis.PyQt.QtCore import Qt
from qgis_support import BACKEND_PYTHON, REPO, SAMPLE_S1, SAMPLE_S2, needs_model, use_real_backend

SIZE = int(os.environ.get("CLOUDREMOVAL_CANCEL_SIZE", "512"))


class CancelHalfway(QgsProcessingFeedback):
    """Presses Cancel once the run reports half of its progress."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled_at: float | None = None
        # direct: the backend's events may arrive on another thread, with no event loop to queue them on
        self.progressChanged.connect(self._on_progress, Qt.DirectConnection)

    def _on_progress(self, percent: float) -> None:
        if percent >= 50 and self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
            self.cancel()


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if not BACKEND_PYTHON.exists():
        pytest.skip("the backend environment (.venv) is not set up")
    folder = tmp_path_factory.mktemp("cancel")
    code = (
        "import sys; from backend.commands.bench import mirrored_mosaic as m; "
        "m(sys.argv[1], int(sys.argv[3]), sys.argv[4]); m(sys.argv[2], int(sys.argv[3]), sys.argv[5])"
    )
    optical, sar = str(folder / "s2.tif"), str(folder / "s1.tif")
    arguments = [str(SAMPLE_S2), str(SAMPLE_S1), str(SIZE), optical, sar]
    subprocess.run([str(BACKEND_PYTHON), "-c", code, *arguments], cwd=REPO, check=True, timeout=300)
    return optical, sar


@needs_model
@pytest.mark.parametrize("warm", [True, False], ids=["warm-worker", "one-process-per-job"])
def test_cancel_halfway_leaves_nothing(
    provider: Any, mosaic: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm: bool
) -> None:
    use_real_backend(monkeypatch)
    monkeypatch.setenv("CLOUD_REMOVAL_WARM_WORKER", "1" if warm else "0")
    output = tmp_path / "out.tif"
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
    feedback = CancelHalfway()
    parameters = {"OPTICAL": mosaic[0], "SAR": mosaic[1], "DEVICE": 1, "OUTPUT": str(output)}
    _, ok = algorithm.run(parameters, QgsProcessingContext(), feedback)
    ended = time.monotonic()
    assert feedback.cancelled_at is not None, "the run never reached half way"
    assert not ok
    assert sorted(path.name for path in tmp_path.iterdir()) == []
    print(f"\n{SIZE}² {'warm worker' if warm else 'one process'}: {ended - feedback.cancelled_at:.2f} s to return")
