"""The panel's model choice: shipped, imported or any weights file, with the chosen model's card below it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ..processing_provider import settings as run_settings
from . import settings
from .model_cards import CardError, card_html, import_model, imported_models, read_card


class ModelPicker(QWidget):
    """A combo of the models of one method, *Import…* and *File…* buttons, and the card (``changed``: the model)."""

    changed = pyqtSignal(str)
    failed = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build the empty picker; :meth:`fill` lists a method's models."""
        super().__init__(parent)
        self.cards: dict[str, dict[str, Any]] = {}
        self.models: list[dict[str, Any]] = []
        self.backend_found = False
        self.algorithm = ""
        self._filling = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.combo = QComboBox()
        # long model or file names must not widen the panel: they are elided, the full text is the tooltip
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(10)
        self.combo.currentIndexChanged.connect(self._changed)
        import_button, file_button = QToolButton(), QToolButton()
        import_button.setText("Import…")
        import_button.setToolTip("Copy a .safetensors model into your QGIS profile and list it here")
        import_button.clicked.connect(self._import)
        file_button.setText("File…")
        file_button.setToolTip("Use a .safetensors model where it is")
        file_button.clicked.connect(self._pick_file)
        row.addWidget(self.combo, 1)
        row.addWidget(import_button)
        row.addWidget(file_button)
        layout.addLayout(row)
        self.card = QLabel()
        self.card.setWordWrap(True)
        self.card.setStyleSheet("QLabel { background: palette(base); padding: 4px; }")
        layout.addWidget(self.card)

    def current(self) -> str:
        """Return the chosen model: a shipped name or a weights file."""
        return str(self.combo.currentData() or "")

    def current_card(self) -> dict[str, Any]:
        """Return the chosen model's card, or an empty dict when it is not known."""
        return dict(self.cards.get(self.current(), {}).get("card") or {})

    def fill(self, algorithm: str, wanted: str, models: list[dict[str, Any]], backend_found: bool) -> None:
        """List the models of ``algorithm`` and choose ``wanted``.

        Args:
            algorithm: the method's backend name (``dbcr``...).
            wanted: the model to choose (a name or a file); listed even when it is not installed.
            models: the rows of ``python -m backend models --json``.
            backend_found: whether the backend works (for the card's note about missing models).
        """
        self.algorithm, self.models, self.backend_found = algorithm, models, backend_found
        self._filling = True
        self.combo.clear()
        self.cards.clear()
        for info in models:
            if info.get("algorithm") == algorithm and info.get("kind") != "config" and info.get("path"):
                self.combo.addItem(f"{info['name']} (shipped)", info["name"])
                self._remember(info["name"], Path(info["path"]), info)
        for name, path in imported_models(settings.imported_models_dir(), algorithm).items():
            self.combo.addItem(f"{name} (imported)", str(path))
            self._remember(str(path), path)
        if self.combo.findData(wanted) < 0:
            is_file = wanted.endswith(".safetensors") or "/" in wanted
            self.combo.addItem(f"{Path(wanted).name} (file)" if is_file else f"{wanted} (not installed)", wanted)
            if is_file:
                self._remember(wanted, Path(wanted))
        self.combo.setCurrentIndex(max(0, self.combo.findData(wanted)))
        self._filling = False
        self._changed()

    def _remember(self, key: str, path: Path, info: dict[str, Any] | None = None) -> None:
        try:
            self.cards[key] = {"card": read_card(path), "info": info or {}}
        except CardError as error:
            self.cards[key] = {"error": str(error), "info": info or {}}

    def _changed(self) -> None:
        if self._filling:
            return
        key = self.current()
        self.combo.setToolTip(key)
        entry = self.cards.get(key)
        if entry is None:
            info = next((model for model in self.models if model.get("name") == key), None)
            if info is not None:
                self.card.setText(card_html(None, info))
            elif self.backend_found:
                self.card.setText(f"<i>No model named “{key}” is installed: import one, or pick a file.</i>")
            else:
                self.card.setText(f"<i>“{key}”: set up the backend to see the installed models and their cards.</i>")
        elif "error" in entry:
            self.card.setText(f"<i>{entry['error']}</i>")
        else:
            self.card.setText(card_html(entry["card"], entry["info"]))
        self.changed.emit(key)

    def _choose(self, model: str) -> None:
        run_settings.set_method_model(self.algorithm, model)
        self.fill(self.algorithm, model, self.models, self.backend_found)

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", str(Path.home()), "Models (*.safetensors)")
        if not path:
            return
        try:
            self._choose(str(import_model(Path(path), settings.imported_models_dir())))
        except CardError as error:
            self.failed.emit(str(error))

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Use a model file", str(Path.home()), "Models (*.safetensors)")
        if path:
            self._choose(path)
