"""Runs a Processing algorithm from the dock as a background task and adds its styled result to the project.

The run goes through ``QgsProcessingAlgRunnerTask``: QGIS's task manager shows its progress and can cancel it, and
the algorithm runs exactly as in the toolbox (same parameters, same checks, same backend command).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsApplication,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..processing_provider.styling import style_true_colour


class RelayFeedback(QgsProcessingFeedback):
    """A feedback that also hands every message to the dock (``message``: level, text)."""

    message = pyqtSignal(str, str)

    def __init__(self) -> None:
        """Start with no errors."""
        super().__init__()
        self.errors: list[str] = []

    def pushInfo(self, info: str) -> None:
        """Relay an information line."""
        super().pushInfo(info)
        self.message.emit("info", info)

    def pushWarning(self, warning: str) -> None:
        """Relay a warning."""
        super().pushWarning(warning)
        self.message.emit("warning", warning)

    def reportError(self, error: str, fatalError: bool = False) -> None:
        """Keep and relay an error (the task reports the algorithm's exception here)."""
        super().reportError(error, fatalError)
        self.errors.append(error)
        self.message.emit("error", error)


def unique_path(folder: Path, stem: str, suffix: str = ".tif") -> Path:
    """Return ``folder/stem.tif``, or ``folder/stem_2.tif`` and so on when it exists."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem).strip("_") or "output"
    candidate, number = folder / f"{safe}{suffix}", 2
    while candidate.exists():
        candidate, number = folder / f"{safe}_{number}{suffix}", number + 1
    return candidate


class DockRun(QObject):
    """One run at a time: ``start`` it, watch ``message``, get ``done(ok, text, layer)`` when it ends."""

    message = pyqtSignal(str, str)
    progress = pyqtSignal(float)
    done = pyqtSignal(bool, str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        """Create an idle runner."""
        super().__init__(parent)
        self._running: tuple[Any, ...] | None = None
        self._started = 0.0
        self._name = ""

    def running(self) -> bool:
        """Return True while a task runs."""
        return self._running is not None

    def start(self, algorithm_id: str, parameters: dict[str, Any], layer_name: str) -> str:
        """Start the algorithm as a task; return an error sentence instead when it cannot start."""
        if self._running is not None:
            return "A run is already going on; cancel it first."
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
        if algorithm is None:
            return f"The algorithm {algorithm_id} is not registered; is the plugin enabled?"
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        ok, problem = algorithm.checkParameterValues(parameters, context)
        if not ok:
            return problem
        feedback = RelayFeedback()
        feedback.message.connect(self.message)
        feedback.progressChanged.connect(self.progress)
        task = QgsProcessingAlgRunnerTask(algorithm, parameters, context, feedback)
        task.executed.connect(self._executed)
        # The task, its context, feedback and algorithm must outlive this call: QGIS holds plain pointers to them.
        self._running = (task, context, feedback, algorithm)
        self._started, self._name = time.monotonic(), layer_name
        QgsApplication.taskManager().addTask(task)
        return ""

    def cancel(self) -> None:
        """Ask the running task to stop (the backend is stopped at once, no file is left)."""
        if self._running is not None:
            self._running[0].cancel()

    def _executed(self, successful: bool, results: dict[str, Any]) -> None:
        if self._running is None:
            return
        _, _, feedback, _ = self._running
        self._running = None
        seconds = time.monotonic() - self._started
        if not successful:
            error = feedback.errors[-1] if feedback.errors else "The run was cancelled."
            self.done.emit(False, error, None)
            return
        layer = QgsRasterLayer(str(results.get("OUTPUT", "")), self._name, "gdal")
        if not layer.isValid():
            self.done.emit(False, f"The result {results.get('OUTPUT')} could not be opened.", None)
            return
        style_true_colour(layer)
        project = QgsProject.instance()
        project.addMapLayer(layer, False)
        project.layerTreeRoot().insertLayer(0, layer)  # on top: the result is what the user wants to see
        text = f"Done in {seconds:.0f} s: “{layer.name()}” was added to the project."
        fraction = results.get("CLOUD_FRACTION")
        if isinstance(fraction, (int, float)):
            text += f" {100 * fraction:.0f} % of the image was under cloud."
        self.done.emit(True, text, layer)
