"""The dialog that creates (or repairs) the backend environment, or adopts an existing Python."""

from __future__ import annotations

import shutil
from pathlib import Path

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtGui import QFontDatabase
from qgis.PyQt.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..processing_provider import settings as run_settings
from . import settings
from .backend_setup import (
    REQUIREMENTS,
    SetupTask,
    build_steps,
    default_torch_index,
    find_base_python,
    qgis_proxy,
    select_requirements,
)
from .environment import BackendCheck, BackendState, Gpu, describe_device, detect_gpus
from .pip_errors import NEEDED_GB


class SetupDialog(QDialog):
    """Explains what will be installed where, runs the set-up with a visible log, and reports in words."""

    backend_changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None, gpus: list[Gpu] | None = None) -> None:
        """Build the dialog; ``gpus`` as detected (detected here when None)."""
        super().__init__(parent)
        self.setWindowTitle("Set up the cloud-removal backend")
        self.setMinimumWidth(640)
        self.gpus = detect_gpus() if gpus is None else gpus
        self.venv = run_settings.managed_venv_dir()
        self.base_python = find_base_python()
        self.task: SetupTask | None = None
        self.check = BackendCheck(self)
        self.check.done.connect(self._existing_checked)

        layout = QVBoxLayout(self)
        kind = "gpu" if self.gpus else "cpu"
        builds = "CUDA builds of PyTorch and onnxruntime-gpu" if self.gpus else "PyTorch and onnxruntime for the CPU"
        intro = QLabel(
            "<p>The cloud-removal models run in their own Python environment (PyTorch, rasterio, onnxruntime, "
            "s2cloudless), kept apart from QGIS's Python so nothing in QGIS changes.</p>"
            f"<p><b>Where:</b> {self.venv}<br><b>Device:</b> {describe_device(self.gpus)}<br>"
            f"<b>Installs:</b> the pinned backend requirements with {builds}, from the internet "
            f"(needs about {NEEDED_GB[kind]:.0f} GB of disk; {self._free_space()}).<br>"
            f"<b>Created with:</b> {self.base_python or 'no Python found: use an existing one instead'}</p>"
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        buttons = QHBoxLayout()
        self.create_button = QPushButton("Create backend")
        self.create_button.setEnabled(self.base_python is not None)
        self.create_button.clicked.connect(self.start)
        self.existing_button = QPushButton("Use an existing Python…")
        self.existing_button.clicked.connect(self.choose_existing)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self._close_or_cancel)
        for button in (self.create_button, self.existing_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setMinimumHeight(220)
        self.log.setPlaceholderText("What pip does will show here, line by line.")
        layout.addWidget(self.log)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

    def _free_space(self) -> str:
        folder = self.venv
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            return f"{shutil.disk_usage(folder).free / 1e9:.0f} GB free there"
        except OSError:
            return "free space unknown"

    def start(self) -> None:
        """Create the environment and install the backend into it, as a background task."""
        if self.base_python is None or self.task is not None:
            return
        gpu = bool(self.gpus)
        text = select_requirements(REQUIREMENTS.read_text(encoding="utf-8"), gpu)
        selected = self.venv.parent / "requirements-selected.txt"
        chosen = str(QgsSettings().value(settings.SETTINGS_TORCH_INDEX, "", type=str) or "").strip()
        # The user's own index must work; the CPU-only default may fail (no access) and PyPI then serves torch.
        torch_index = chosen or default_torch_index(gpu)
        steps = build_steps(self.base_python, self.venv, selected, text, torch_index, torch_index_optional=not chosen)

        def prepare() -> None:
            selected.parent.mkdir(parents=True, exist_ok=True)
            selected.write_text(text, encoding="utf-8")

        self.task = SetupTask(steps, self.venv.parent, gpu, qgis_proxy(), prepare)
        self.task.line.connect(self._line)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self.task.taskCompleted.connect(self._completed)
        self.task.taskTerminated.connect(self._terminated)
        self._busy(True)
        self.progress.setVisible(True)
        self._say("Setting up… this takes a few minutes; QGIS stays usable and the task manager shows progress.")
        QgsApplication.taskManager().addTask(self.task)

    def choose_existing(self) -> None:
        """Adopt a Python that already has the backend's packages, after checking that it works."""
        path, _ = QFileDialog.getOpenFileName(self, "Python of an existing backend environment", str(Path.home()))
        if not path:
            return
        self._say(f"Checking {path}…")
        state = self.check.start(Path(path), use_cache=False)
        if state is not None:
            self._existing_checked(state)

    def _existing_checked(self, state: BackendState) -> None:
        if state.kind == "found":
            run_settings.set_backend_python(state.python)
            self._say(f"✔ {state.describe()}", "green")
            self.backend_changed.emit()
        else:
            self._say(f"That Python cannot run the backend: {state.why}", "red")

    def _line(self, text: str) -> None:
        self.log.appendPlainText(text)

    def _completed(self) -> None:
        run_settings.set_backend_python(str(run_settings.venv_python(self.venv)))
        self.task = None
        self._busy(False)
        self.progress.setValue(100)
        self._say("✔ The backend is ready. The Cloud removal algorithms can run now.", "green")
        self.backend_changed.emit()

    def _terminated(self) -> None:
        error = self.task.error if self.task is not None else ""
        self.task = None
        self._busy(False)
        self._say(error or "The set-up stopped.", "red")

    def _busy(self, busy: bool) -> None:
        self.create_button.setEnabled(not busy and self.base_python is not None)
        self.existing_button.setEnabled(not busy)
        self.close_button.setText("Cancel" if busy else "Close")

    def _close_or_cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        else:
            self.accept()

    def _say(self, text: str, colour: str = "") -> None:
        self.status.setText(f"<span style='color:{colour}'>{text}</span>" if colour else text)
