"""What the QGIS-side tests share: paths, the model skip, a recording feedback, qgis_process results, rasters."""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from osgeo import gdal
from qgis.core import QgsProcessingFeedback

REPO = Path(__file__).absolute().parents[2]
DATA = Path(__file__).absolute().parent / "data"
SAMPLE_S2 = REPO / "sample" / "ROIs1868_summer_s2_cloudy_19_p30.tif"
SAMPLE_S1 = REPO / "sample" / "ROIs1868_summer_s1_19_p30.tif"
SAMPLE_RGB = REPO / "sample" / "rice2_249_cloudy.png"  # DE's bundled sample: 8-bit RGB, no georeferencing
FAKE_BACKEND = DATA / "fake_backend.py"
WEIGHTS = REPO / "models" / "weights" / "dbcr-lite.safetensors"

BACKEND_PYTHON = REPO / ".venv" / "bin" / "python"


def use_real_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the plugin at the project's own backend environment (``.venv``); skip where it is not set up."""
    if not BACKEND_PYTHON.exists():
        pytest.skip("the backend environment (.venv) is not set up")
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(BACKEND_PYTHON))


def read_raster(path: Path) -> Any:
    """Every band of a raster as one array (GDAL), the file closed again."""
    dataset = gdal.Open(str(path))
    try:
        return dataset.ReadAsArray()
    finally:
        dataset = None


# Tests that run the real backend use the shipped DB-CR model; it is committed, so they never skip: a missing
# weights file fails them (the fixture asserts it is there).
needs_model = pytest.mark.usefixtures("shipped_dbcr_model")


def needs_weights(name: str) -> pytest.MarkDecorator:
    """Skip until ``models/weights/<name>.safetensors`` is shipped."""
    path = REPO / "models" / "weights" / f"{name}.safetensors"
    return pytest.mark.skipif(not path.exists(), reason=f"{path.relative_to(REPO)} is not shipped yet")


@functools.cache
def backend_help(command: str) -> str:
    """The real backend's ``--help`` of one command (empty when the backend or the command is missing)."""
    if not BACKEND_PYTHON.exists():
        return ""
    completed = subprocess.run(
        [str(BACKEND_PYTHON), "-m", "backend", command, "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return completed.stdout if completed.returncode == 0 else ""


def needs_backend(command: str, *flags: str) -> pytest.MarkDecorator:
    """Skip while the real backend lacks a command or one of its flags: such tests turn on by themselves."""
    text = backend_help(command)
    missing = [flag for flag in flags if flag not in text]
    reason = f"the backend has no `{command}` command yet" if not text else f"`{command}` lacks {', '.join(missing)}"
    return pytest.mark.skipif(not text or bool(missing), reason=reason)


gdal.UseExceptions()


def _load_sandbox() -> ModuleType:
    spec = importlib.util.spec_from_file_location("qgis_sandbox", REPO / "scripts" / "qgis_sandbox.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sandbox = _load_sandbox()


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps what the algorithm reported; cancels itself after the first progress when asked to."""

    def __init__(self, cancel_after_progress: bool = False) -> None:
        super().__init__()
        self.cancel_after_progress = cancel_after_progress
        self.progress: list[float] = []
        self.infos: list[str] = []
        self.errors: list[str] = []
        self.cancelled_at: float | None = None

    def setProgress(self, progress: float) -> None:
        super().setProgress(progress)
        self.progress.append(progress)
        if self.cancel_after_progress and progress > 0 and self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
            self.cancel()

    def pushInfo(self, info: str) -> None:
        self.infos.append(info)

    def pushConsoleInfo(self, info: str) -> None:
        self.infos.append(info)

    def reportError(self, error: str, fatalError: bool = False) -> None:
        self.errors.append(error)


def recorded_call(record: Path) -> tuple[list[str], dict[str, Any]]:
    """What the stand-in backend was given: the command line after the plugin folder, and the job it read."""
    call = json.loads(record.read_text())
    arguments = call["arguments"]
    return arguments[arguments.index("-c") + 3 :], call["job"]  # after -c <launcher> <plugin folder>


class QgisProcessResult:
    """What one ``qgis_process`` call returned."""

    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout[self.stdout.index("{") :])


def raster_grid(path: Path) -> dict[str, Any]:
    """The facts an output must share with its input: CRS, transform, size, bands, data type, nodata."""
    dataset = gdal.Open(str(path))
    try:
        band = dataset.GetRasterBand(1)
        return {
            "crs": dataset.GetSpatialRef().ExportToWkt() if dataset.GetSpatialRef() else None,
            "transform": dataset.GetGeoTransform(),
            "size": (dataset.RasterXSize, dataset.RasterYSize),
            "bands": dataset.RasterCount,
            "dtype": gdal.GetDataTypeName(band.DataType),
            "nodata": band.GetNoDataValue(),
        }
    finally:
        dataset = None


def write_subset(source: Path, target: Path, bands: list[int] | None = None, shift_m: float = 0.0) -> Path:
    """Copy ``source`` (some bands, optionally moved ``shift_m`` metres east) to a small GeoTIFF for a bad input."""
    gdal.Translate(str(target), str(source), bandList=bands)
    if shift_m:
        dataset = gdal.Open(str(target), gdal.GA_Update)
        x0, dx, rx, y0, ry, dy = dataset.GetGeoTransform()
        dataset.SetGeoTransform((x0 + shift_m, dx, rx, y0, ry, dy))
        dataset = None
    return target
