"""The "Cloud removal" panel: pick a method and a model, see its card, set NFE and the device, run on the project.

Every choice is stored (``processing_provider/settings.py``) and becomes the default of the Processing
algorithms, so the panel is also where the toolbox dialog, batch mode and the modeler get their starting values.
The widgets' bounds are the backend's (``backend/protocol.py``, ``RUN_SETTINGS``), as the algorithms' are. The
"Advanced" group (``advanced_settings.py``) and the run controls (``run_controls.py``) are widgets of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qgis.core import QgsProject, QgsRasterLayer
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QProcess, Qt
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..backend.protocol import RUN_SETTINGS
from ..processing_provider import settings as run_settings
from ..processing_provider.dbcr import DbcrAlgorithm
from ..processing_provider.de import DeAlgorithm
from ..processing_provider.diffcr import DiffcrAlgorithm
from . import settings
from .advanced_settings import AdvancedSettings
from .environment import BackendCheck, BackendState, Gpu, describe_device, parse_nvidia_smi
from .model_picker import ModelPicker
from .project_layers import Inputs, PickError, pick_inputs
from .run_controls import RunControls

METHODS = {algorithm.BACKEND_ALGORITHM: algorithm for algorithm in (DbcrAlgorithm, DiffcrAlgorithm, DeAlgorithm)}
METHOD_TITLES = {
    "dbcr": "DB-CR — Sentinel-2 + Sentinel-1 radar",
    "diffcr": "DiffCR — Sentinel-2, one to three dates",
    "de": "DE — high-resolution RGB / RGB + NIR",
}
NFE_HINT = "Fewer steps: smoother, closer to the average. More: sharper, but may invent detail."
COLOURS = {"found": "#1e7b34", "missing": "#b03a2e", "broken": "#b03a2e", "checking": "#7a7a7a"}


class CloudRemovalDock(QgsDockWidget):
    """The panel; the plugin hands it the function that opens the set-up dialog."""

    def __init__(self, iface: Any, open_setup: Callable[[], None], parent: QWidget | None = None) -> None:
        """Build the panel; ``open_setup()`` opens the set-up dialog."""
        super().__init__("Cloud removal", parent)
        self.setObjectName("CloudRemovalDock")
        self.iface, self.open_setup = iface, open_setup
        self.state = BackendState("checking", str(run_settings.backend_python()))
        self.gpus: list[Gpu] = []
        self.check = BackendCheck(self)
        self.check.done.connect(self._backend_checked)
        self._loading = False
        self._build()
        self._load_choices()
        project = QgsProject.instance()
        project.layersAdded.connect(self.refresh_inputs)
        project.layersRemoved.connect(self.refresh_inputs)
        self._detect_gpu()
        self.refresh_backend()

    # --- building -------------------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        status_row = QHBoxLayout()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.setup_button = QPushButton("Set up backend…")
        self.setup_button.clicked.connect(lambda: self.open_setup())
        refresh = QToolButton()
        refresh.setText("↻")
        refresh.setToolTip("Check the backend again")
        refresh.clicked.connect(lambda: self.refresh_backend(use_cache=False))
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.setup_button)
        status_row.addWidget(refresh)
        layout.addLayout(status_row)

        # A grid: after a relayout (opening "Advanced") a QFormLayout placed its rows with stale heights but told
        # the panel the wrapped ones: the hints and the card were cut to one line, above a gap under the last row.
        self._form = QGridLayout()
        self._form.setColumnStretch(1, 1)
        self.method = QComboBox()
        for key, title in METHOD_TITLES.items():
            self.method.addItem(title, key)
        self.method.currentIndexChanged.connect(self._method_changed)
        self._add_row("Method", self.method)
        self.inputs = QLabel()
        self.inputs.setWordWrap(True)
        self._add_row("Inputs", self.inputs)
        self.picker = ModelPicker()
        self.picker.changed.connect(self._model_changed)
        self._add_row("Model", self.picker)
        self.nfe = QSpinBox()
        self.nfe.setRange(0, int(RUN_SETTINGS["nfe"].maximum or 0))  # 0: the model's own
        self.nfe.valueChanged.connect(self._save)
        self._add_row("NFE (steps)", self.nfe)
        hint = QLabel(f"<small>{NFE_HINT}</small>")
        hint.setWordWrap(True)
        self._add_row("", hint)
        self.device = QComboBox()
        for key, label in DbcrAlgorithm.DEVICES:
            self.device.addItem(label, key)
        self.device.currentIndexChanged.connect(self._save)
        self._add_row("Device", self.device)
        self.detected = QLabel("Looking for a GPU…")
        self.detected.setWordWrap(True)
        self._add_row("", self.detected)
        layout.addLayout(self._form)

        self.advanced = AdvancedSettings()
        self.advanced.changed.connect(self._save)
        layout.addWidget(self.advanced)
        self.controls = RunControls()
        self.controls.run_requested.connect(self.run_on_project)
        self.controls.dialog_requested.connect(self.open_dialog)
        self.picker.failed.connect(lambda text: self.controls.say(text, "error"))
        layout.addWidget(self.controls)
        # The panel's widgets by name, as tests and the GUI driver reach them.
        advanced, controls = self.advanced, self.controls
        self.tile, self.overlap, self.runtime = advanced.tile, advanced.overlap, advanced.runtime
        self.keep_clear, self.threshold, self.folder = advanced.keep_clear, advanced.threshold, advanced.folder
        self.run, self.run_button, self.cancel_button = controls.run, controls.run_button, controls.cancel_button
        self.progress, self.message = controls.progress, controls.message
        layout.addStretch(1)
        for combo in (self.method, self.device):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)

    def _add_row(self, text: str, field: QWidget) -> None:
        """Add a form row labelled ``text``, or without one across both columns (the word-wrapped hints)."""
        row = self._form.rowCount()
        if not text:
            self._form.addWidget(field, row, 0, 1, 2)
            return
        label = QLabel(text)  # as QFormLayout puts it: centred on a one-line field, near the top of a tall one
        label.setBuddy(field)
        label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        label.setMinimumHeight(min(field.sizeHint().height(), label.sizeHint().height() * 7 // 4))
        self._form.addWidget(label, row, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._form.addWidget(field, row, 1)

    # --- choices ------------------------------------------------------------------------------------------
    def method_key(self) -> str:
        """Return the chosen method's backend name."""
        return str(self.method.currentData())

    def _load_choices(self) -> None:
        self._loading = True
        choices = run_settings.load_choices()
        self.method.setCurrentIndex(max(0, self.method.findData(settings.chosen_method())))
        self.device.setCurrentIndex(max(0, self.device.findData(choices.device)))
        self.advanced.load(choices)
        self._loading = False
        self._method_changed()

    def _save(self) -> None:
        if self._loading:
            return
        run_settings.save_choices(self.advanced.choices(str(self.device.currentData())))
        method = self.method_key()
        settings.set_chosen_method(method)
        run_settings.set_method_nfe(method, self.nfe.value() or None)
        if self.picker.current():
            run_settings.set_method_model(method, self.picker.current())

    def _method_changed(self) -> None:
        method = METHODS[self.method_key()]
        self._loading = True
        self.nfe.setValue(run_settings.method_nfe(method.BACKEND_ALGORITHM, method.DEFAULT_NFE) or 0)
        self._loading = False
        self._fill_models()
        self.refresh_inputs()
        self._save()

    def _fill_models(self) -> None:
        method = METHODS[self.method_key()]
        wanted = run_settings.method_model(method.BACKEND_ALGORITHM, method.DEFAULT_MODEL)
        self.picker.fill(method.BACKEND_ALGORITHM, wanted, self.state.models, self.state.kind == "found")

    def _model_changed(self, _model: str = "") -> None:
        default = self.picker.current_card().get("default_nfe")
        self.nfe.setSpecialValueText(f"the model's ({default})" if default else "the model's own")
        self._save()
        self.refresh_inputs()

    # --- backend and device ------------------------------------------------------------------------------
    def refresh_backend(self, use_cache: bool = True) -> None:
        """Check the backend (from the cache when nothing changed) and update the status line and models."""
        self._show_state(BackendState("checking", str(run_settings.backend_python())))
        state = self.check.start(run_settings.backend_python(), use_cache)
        if state is not None:
            self._backend_checked(state)

    def _backend_checked(self, state: BackendState) -> None:
        self._show_state(state)
        self._fill_models()

    def _show_state(self, state: BackendState) -> None:
        self.state = state
        colour = COLOURS.get(state.kind, "#000")
        self.status.setText(f"<span style='color:{colour}'>● {state.describe()}</span>")
        self.status.setToolTip(f"Backend Python: {state.python}\n(from {run_settings.backend_python_origin()})")
        self.setup_button.setVisible(state.kind in ("missing", "broken"))
        self.setup_button.setText("Set up backend…" if state.kind == "missing" else "Repair backend…")

    def _detect_gpu(self) -> None:
        process = QProcess(self)
        process.finished.connect(lambda *_: self._gpu_found(process))
        process.errorOccurred.connect(lambda *_: self._gpu_found(None))
        process.start("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader"])

    def _gpu_found(self, process: QProcess | None) -> None:
        text = bytes(process.readAllStandardOutput()).decode("utf-8", "replace") if process is not None else ""
        self.gpus = parse_nvidia_smi(text)
        self.detected.setText(f"<small>{describe_device(self.gpus)}</small>")

    # --- running ------------------------------------------------------------------------------------------
    def refresh_inputs(self, *_: object) -> None:
        """Show which project layers a run would use."""
        try:
            self.inputs.setText(self._pick().describe())
        except PickError as error:
            self.inputs.setText(f"<span style='color:#b03a2e'>{error}</span>")

    def _pick(self) -> Inputs:
        layers = [x for x in QgsProject.instance().mapLayers().values() if isinstance(x, QgsRasterLayer)]
        active = self.iface.activeLayer() if self.iface is not None else None
        active = active if isinstance(active, QgsRasterLayer) else None
        card = self.picker.current_card()
        dates = int((card.get("config") or {}).get("dates", 1)) if self.method_key() == "diffcr" else 1
        wants_sar = bool(card["sar_bands"]) if "sar_bands" in card else None
        return pick_inputs(self.method_key(), layers, active, dates, wants_sar)

    def parameters(self) -> dict[str, Any]:
        """Return the Processing parameters of a run on the current layers (raises PickError)."""
        inputs = self._pick()
        method = METHODS[self.method_key()]
        optical: object = [x.id() for x in inputs.optical] if method.MAX_DATES > 1 else inputs.optical[0].id()
        name = f"{inputs.optical[0].name()} cloud-free ({method.LABEL})"
        parameters = {
            "OPTICAL": optical,
            "NFE": self.nfe.value() or None,
            "MODEL": self.picker.current() or method.DEFAULT_MODEL,
            "DEVICE": self.device.currentIndex(),
            **self.advanced.parameters(),
            "OUTPUT": self.advanced.output(name),
        }
        if inputs.sar is not None:
            parameters["SAR"] = inputs.sar.id()
        return parameters

    def run_on_project(self) -> None:
        """Run the chosen method on the project's layers as a background task."""
        try:
            parameters = self.parameters()
        except PickError as error:
            self.controls.say(str(error), "error")
            return
        method = METHODS[self.method_key()]
        name = f"{self._pick().optical[0].name()} cloud-free ({method.LABEL})"
        self.controls.start(f"cloudremoval:{method.BACKEND_ALGORITHM}", parameters, name, method.LABEL)

    def open_dialog(self) -> None:
        """Open the method's Processing dialog, filled with the current layers and settings."""
        import processing  # QGIS's Processing plugin: present in the desktop application

        try:
            parameters = self.parameters()
            parameters.pop("OUTPUT")
        except PickError:
            parameters = {}
        processing.execAlgorithmDialog(f"cloudremoval:{self.method_key()}", parameters)

    def teardown(self) -> None:
        """Stop the background check and let go of the project's signals (the plugin is unloading)."""
        self.check.cancel()
        project = QgsProject.instance()
        for signal in (project.layersAdded, project.layersRemoved):
            try:
                signal.disconnect(self.refresh_inputs)
            except TypeError:
                pass
