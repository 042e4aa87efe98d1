"""The panel's run controls: run, cancel, the Processing dialog, the progress bar and the message line.

A run goes through ``DockRun`` (``run_task.py``) as a background task; while it runs the run button is off, Cancel
on and the bar shows its progress, and when it ends the message line says how it went (the task's errors, in red).
The panel decides what to run: it answers ``run_requested`` and ``dialog_requested``.
"""

from __future__ import annotations

from typing import Any

from qgis.core import QgsMapLayer
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QToolButton, QVBoxLayout, QWidget

from .run_task import DockRun

LEVEL_COLOURS = {"error": "#b03a2e", "warning": "#9a6700", "success": "#1e7b34"}


class RunControls(QWidget):
    """The run row, the progress bar and the message line, with the one run they drive."""

    run_requested = pyqtSignal()
    dialog_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build the controls, idle."""
        super().__init__(parent)
        self.run = DockRun(self)
        self.run.message.connect(self._run_message)
        self.run.done.connect(self._run_done)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        run_row = QHBoxLayout()
        self.run_button = QPushButton("Run on current layers")
        self.run_button.clicked.connect(lambda: self.run_requested.emit())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.run.cancel)
        dialog_button = QToolButton()
        dialog_button.setText("Dialog…")
        dialog_button.setToolTip("Open the Processing dialog of this method, with these settings")
        dialog_button.clicked.connect(lambda: self.dialog_requested.emit())
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(dialog_button)
        layout.addLayout(run_row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.run.progress.connect(lambda value: self.progress.setValue(int(value)))
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout.addWidget(self.message)

    def start(self, algorithm_id: str, parameters: dict[str, Any], layer_name: str, label: str) -> None:
        """Start the algorithm as a task whose result is called ``layer_name``; ``label`` names the method."""
        problem = self.run.start(algorithm_id, parameters, layer_name)
        if problem:
            self.say(problem, "error")
            return
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.say(f"Running {label}… (progress also in the task manager)", "info")

    def say(self, text: str, level: str) -> None:
        """Show ``text`` on the message line, coloured by its level (error, warning, success, info)."""
        colour = LEVEL_COLOURS.get(level, "")
        self.message.setText(f"<span style='color:{colour}'>{text}</span>" if colour else text)

    def _run_message(self, level: str, text: str) -> None:
        if level != "error":
            self.say(text, level)

    def _run_done(self, ok: bool, text: str, layer: QgsMapLayer | None) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)
        self.say(text, "success" if ok else "error")
