"""The panel's "Advanced" group: tile size, overlap, runtime, clear pixels, cloud threshold and where results go.

The widgets' bounds are the backend's (``backend/protocol.py``, ``RUN_SETTINGS``), as the algorithms' are; their
values are the stored run choices (``processing_provider/settings.py``), saved by the panel on every ``changed``.
The output folder is the panel's own setting: empty, a run writes a temporary file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import QgsSettings
from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from ..backend.protocol import RUN_SETTINGS
from ..processing_provider import settings as run_settings
from ..processing_provider.parameters import RUNTIMES
from .run_task import unique_path

OUTPUT_FOLDER = "cloud_removal/output_folder"
"""QgsSettings key: the folder the panel's runs write to (empty: temporary files)."""


class AdvancedSettings(QgsCollapsibleGroupBox):
    """The collapsed "Advanced" group; ``changed`` when a run choice changes (not the folder, stored at once)."""

    changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build the group, collapsed, with the bounds of the backend's run settings."""
        super().__init__("Advanced", parent)
        form = QFormLayout(self)
        self.tile = QSpinBox()
        tile = RUN_SETTINGS["tile_size"]
        self.tile.setRange(run_settings.unset_value(tile), int(tile.maximum or 0))
        self.tile.setSingleStep(tile.multiple)
        self.tile.setSpecialValueText("the model's own")
        self.tile.valueChanged.connect(self._changed)
        form.addRow("Tile size (px)", self.tile)
        self.overlap = QSpinBox()
        overlap = RUN_SETTINGS["overlap"]
        self.overlap.setRange(run_settings.unset_value(overlap), int(overlap.maximum or 0))
        self.overlap.setSpecialValueText("a quarter of the tile")
        self.overlap.valueChanged.connect(self._changed)
        form.addRow("Overlap (px)", self.overlap)
        self.runtime = QComboBox()
        for key, label in RUNTIMES:
            self.runtime.addItem(label, key)
        self.runtime.currentIndexChanged.connect(self._changed)
        self.runtime.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.runtime.setMinimumContentsLength(10)
        form.addRow("Runtime", self.runtime)
        self.keep_clear = QCheckBox("Keep clear pixels (fill only the clouds)")
        self.keep_clear.toggled.connect(self._changed)
        form.addRow(self.keep_clear)
        self.threshold = QDoubleSpinBox()
        threshold = RUN_SETTINGS["cloud_threshold"]
        self.threshold.setRange(float(threshold.minimum or 0), float(threshold.maximum or 1))
        self.threshold.setSingleStep(0.05)
        self.threshold.valueChanged.connect(self._changed)
        form.addRow("Cloud threshold", self.threshold)
        self.folder = QgsFileWidget()
        self.folder.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.folder.setFilePath(str(QgsSettings().value(OUTPUT_FOLDER, "", type=str)))
        self.folder.fileChanged.connect(lambda path: QgsSettings().setValue(OUTPUT_FOLDER, path))
        self.folder.lineEdit().setPlaceholderText("temporary files")
        form.addRow("Save results in", self.folder)
        self.setCollapsed(True)

    def _changed(self, *_: object) -> None:
        self.changed.emit()

    def load(self, choices: run_settings.RunChoices) -> None:
        """Show the stored run choices (each widget says ``changed``; the panel ignores it while loading)."""
        self.runtime.setCurrentIndex(max(0, self.runtime.findData(choices.runtime)))
        self.tile.setValue(choices.tile_size)
        self.overlap.setValue(choices.overlap)
        self.keep_clear.setChecked(choices.keep_clear)
        self.threshold.setValue(choices.cloud_threshold)

    def choices(self, device: str) -> run_settings.RunChoices:
        """Return the run choices to store: these settings and the panel's ``device``."""
        return run_settings.RunChoices(
            device=device,
            tile_size=self.tile.value(),
            overlap=self.overlap.value(),
            runtime=str(self.runtime.currentData()),
            keep_clear=self.keep_clear.isChecked(),
            cloud_threshold=round(self.threshold.value(), 2),
        )

    def parameters(self) -> dict[str, Any]:
        """Return these settings as the algorithms' Processing parameters (overlap None: a quarter of the tile)."""
        return {
            "RUNTIME": self.runtime.currentIndex(),
            "TILE_SIZE": self.tile.value(),
            "OVERLAP": self.overlap.value() if self.overlap.value() != self.overlap.minimum() else None,
            "KEEP_CLEAR": self.keep_clear.isChecked(),
            "CLOUD_THRESHOLD": self.threshold.value(),
        }

    def output(self, name: str) -> str:
        """Return where a run's result named ``name`` goes: a new file in the folder, or a temporary output."""
        folder = self.folder.filePath().strip()
        return str(unique_path(Path(folder), name.replace(" ", "_"))) if folder else "TEMPORARY_OUTPUT"
