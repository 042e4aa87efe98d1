"""The "Cloud removal" panel in real QGIS (headless): status, models and cards, stored choices, a run as a task."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis_support import FAKE_BACKEND, SAMPLE_S1, SAMPLE_S2, recorded_call
from test_environment import CARD, write_safetensors


def process_events_until(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    return bool(condition())


@pytest.fixture
def dock(
    plugin_package: Any, qgis_iface: Any, qgis_processing: None, provider: Any, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Any:  # fmt: skip
    from cloud_removal.plugin import dock as dock_module
    from cloud_removal.plugin import environment, settings
    from cloud_removal.processing_provider import settings as run_settings

    weights = write_safetensors(tmp_path / "dbcr-lite.safetensors", CARD)
    models = tmp_path / "models.json"
    row = {"name": "dbcr-lite", "algorithm": "dbcr", "kind": "weights", "params": 1935061, "gmacs_256": 2.94}
    models.write_text(json.dumps([{**row, "path": str(weights)}]))
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(FAKE_BACKEND))
    monkeypatch.setenv("FAKE_BACKEND_MODELS", str(models))
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "ok")
    monkeypatch.setattr(environment, "profile_dir", lambda: tmp_path / "profile")
    monkeypatch.setattr(settings, "profile_dir", lambda: tmp_path / "profile")
    run_settings.clear_choices()
    project = QgsProject.instance()
    s2, s1 = QgsRasterLayer(str(SAMPLE_S2), "scene"), QgsRasterLayer(str(SAMPLE_S1), "scene s1")
    project.addMapLayers([s2, s1])
    qgis_iface.setActiveLayer(s2)
    opened: list[bool] = []
    panel = dock_module.CloudRemovalDock(qgis_iface, lambda: opened.append(True))
    panel.opened_setup = opened
    assert process_events_until(lambda: panel.state.kind != "checking"), "the backend check never ended"
    yield panel
    panel.teardown()
    panel.deleteLater()
    project.removeAllMapLayers()
    run_settings.clear_choices()


def test_the_panel_shows_the_backend_the_model_card_and_the_inputs(dock: Any) -> None:
    assert "Backend ready, 1 trained model." in dock.status.text()
    assert not dock.setup_button.isVisibleTo(dock)
    assert dock.picker.combo.currentText() == "dbcr-lite (shipped)"
    assert "SEN12MS-CR chips" in dock.picker.card.text() and "VV, VH" in dock.picker.card.text()
    assert dock.inputs.text() == "Optical: scene · Sentinel-1: scene s1"
    assert dock.nfe.value() == 1
    assert "No NVIDIA GPU" in dock.detected.text() or "GPU:" in dock.detected.text()


def test_choices_persist_and_become_the_processing_defaults(dock: Any) -> None:
    from cloud_removal.plugin import settings
    from cloud_removal.processing_provider import settings as run_settings

    dock.device.setCurrentIndex(dock.device.findData("cpu"))
    dock.tile.setValue(128)
    dock.keep_clear.setChecked(False)  # on by default: turning it off must persist
    dock.nfe.setValue(5)
    assert run_settings.load_choices().device == "cpu" and run_settings.load_choices().tile_size == 128
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
    assert algorithm.parameterDefinition("NFE").defaultValue() == 5
    assert algorithm.parameterDefinition("KEEP_CLEAR").defaultValue() is False
    dock.method.setCurrentIndex(dock.method.findData("de"))  # DE has its own NFE, and takes no radar
    assert dock.nfe.value() == 10
    assert dock.inputs.text() == "Optical: scene"  # no RGB layer: the Sentinel-2 image's B4, B3, B2
    assert settings.chosen_method() == "de"


def test_a_missing_backend_offers_the_set_up(dock: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(tmp_path / "none" / "python"))
    dock.refresh_backend(use_cache=False)
    assert dock.status.text().count("Backend missing: there is no Python at")
    assert dock.setup_button.isVisibleTo(dock) and dock.setup_button.text() == "Set up backend…"
    dock.setup_button.click()
    assert dock.opened_setup == [True]


def test_run_on_current_layers_adds_the_styled_result(
    dock: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "copy")
    record = tmp_path / "call.json"
    monkeypatch.setenv("FAKE_BACKEND_RECORD", str(record))
    dock.folder.setFilePath(str(tmp_path))
    dock.tile.setValue(64)
    dock.run_button.click()
    assert dock.run.running(), dock.message.text()
    assert process_events_until(lambda: not dock.run.running(), 30), "the task never ended"
    results = QgsProject.instance().mapLayersByName("scene cloud-free (DB-CR)")
    assert len(results) == 1, dock.message.text()
    result = results[0]
    assert Path(result.source()).parent == tmp_path
    assert result.renderer().type() == "multibandcolor" and result.renderer().redBand() == 4
    assert dock.message.text().startswith("<span style='color:#1e7b34'>Done in")
    job = recorded_call(record)[1]
    assert (job["tile_size"], job["sar"]) == (64, str(SAMPLE_S1))
    assert "overlap" not in job  # the panel's "a quarter of the tile"


def test_cancel_from_the_panel_stops_the_task(dock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "slow")
    dock.run_button.click()
    assert process_events_until(lambda: dock.progress.value() > 0, 10)
    dock.cancel_button.click()
    assert process_events_until(lambda: not dock.run.running(), 10), "cancel did not stop the task"
    assert "Cancelled" in dock.message.text() or "cancelled" in dock.message.text()
    assert dock.run_button.isEnabled()


def test_diffcr_from_the_panel_passes_the_dates_as_a_layer_list(
    dock: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "copy")
    record = tmp_path / "call.json"
    monkeypatch.setenv("FAKE_BACKEND_RECORD", str(record))
    dock.method.setCurrentIndex(dock.method.findData("diffcr"))
    assert dock.picker.combo.currentText() == "diffcr-lite (not installed)"
    assert dock.nfe.value() == 0 and dock.nfe.text() == "the model's own"
    dock.run_button.click()
    assert process_events_until(lambda: not dock.run.running(), 30), "the task never ended"
    job = recorded_call(record)[1]
    assert (job["algorithm"], job["optical"]) == ("diffcr", [str(SAMPLE_S2)])
    assert "nfe" not in job and job["model"] == "diffcr-lite"
    assert QgsProject.instance().mapLayersByName("scene cloud-free (DiffCR)")


def test_the_panel_bounds_are_the_backends(dock: Any) -> None:
    from cloud_removal.backend.protocol import RUN_SETTINGS

    tile, overlap, threshold = RUN_SETTINGS["tile_size"], RUN_SETTINGS["overlap"], RUN_SETTINGS["cloud_threshold"]
    assert (dock.tile.minimum(), dock.tile.maximum(), dock.tile.singleStep()) == (0, tile.maximum, tile.multiple)
    assert (dock.overlap.minimum(), dock.overlap.maximum()) == (overlap.unset, overlap.maximum)
    assert (dock.threshold.minimum(), dock.threshold.maximum()) == (threshold.minimum, threshold.maximum)
    assert (dock.nfe.minimum(), dock.nfe.maximum()) == (0, RUN_SETTINGS["nfe"].maximum)


def test_the_rows_sit_together_and_the_hints_wrap_after_advanced_opens(dock: Any) -> None:
    from qgis.PyQt.QtCore import QPoint

    body = dock.widget().widget()
    # wide enough that the panel's content follows the dock's width (its vertical scroll bar changes that width)
    dock.resize(max(520, body.minimumSizeHint().width() + 80), 820)
    dock.show()
    dock._gpu_found(None)  # the long "No NVIDIA GPU found: runs on the CPU..." line
    dock.picker.card.setText("<p>" + "a long model card, " * 60 + "</p>")  # taller than the panel: it scrolls
    process_events_until(lambda: False, 0.3)
    dock.advanced.setCollapsed(False)  # a relayout: QFormLayout left a gap here, and one-line hints
    process_events_until(lambda: False, 0.3)

    def top(widget: Any) -> int:
        return int(widget.mapTo(body, QPoint(0, 0)).y())

    hint_bottom = top(dock.detected) + dock.detected.height()
    assert 0 <= top(dock.advanced) - hint_bottom <= 12, (hint_bottom, top(dock.advanced))
    for label in (dock.detected, dock.picker.card, dock.inputs):
        assert label.wordWrap()
        assert label.height() >= label.heightForWidth(label.width()), label.text()[:60]
    assert dock.detected.mapTo(body, QPoint(dock.detected.width(), 0)).x() <= dock.widget().viewport().width()
    assert top(dock.picker.card) + dock.picker.card.height() <= top(dock.nfe)
