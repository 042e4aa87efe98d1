"""Drives the real QGIS desktop as a user would; run inside ``qgis.bin --code gui_driver.py`` (see test_gui.py).

Reads its job from the JSON file named by ``CLOUD_REMOVAL_GUI_JOB``: the layers to load, where to save screenshots
and the report, whether to run DB-CR from the panel, with which tile size and (optionally) which model file.
Steps are chained with timers so the QGIS event loop keeps running (tasks, repaints); whatever happens, a report
is written and QGIS exits.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSettings
from qgis.PyQt.QtCore import QSize, QTimer
from qgis.utils import iface, plugins

JOB = json.loads(Path(os.environ["CLOUD_REMOVAL_GUI_JOB"]).read_text(encoding="utf-8"))
SHOTS = Path(JOB["screenshots"])
REPORT: dict[str, Any] = {"errors": [], "screenshots": []}
STARTED = time.monotonic()


def finish() -> None:
    """Write the report and leave at once (no "save the project?" question)."""
    REPORT["seconds"] = round(time.monotonic() - STARTED, 1)
    Path(JOB["report"]).write_text(json.dumps(REPORT, indent=1, default=str), encoding="utf-8")
    os._exit(0)


def guarded(step: Any) -> Any:
    """Run a step; on any error, record it and finish."""

    def run() -> None:
        try:
            step()
        except Exception:
            REPORT["errors"].append(traceback.format_exc())
            finish()

    return run


def later(step: Any, ms: int = 300) -> None:
    """Run ``step`` after ``ms`` milliseconds of event processing."""
    QTimer.singleShot(ms, guarded(step))


def shoot(widget: Any, name: str) -> None:
    """Save a screenshot of a widget (including its children) as PNG."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    widget.grab().save(str(path), "PNG")
    REPORT["screenshots"].append(str(path))


def wait_for(condition: Any, then: Any, timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 200 ms; call ``then`` once true, or record a timeout and finish."""
    deadline = time.monotonic() + timeout_s

    def poll() -> None:
        if condition():
            then()
        elif time.monotonic() > deadline:
            REPORT["errors"].append(f"timed out waiting for {what}")
            finish()
        else:
            later(poll, 200)

    later(poll, 200)


def start() -> None:
    """Load the layers, style them as a user would see them, open the panel."""
    plugin = plugins.get("cloud_removal")
    REPORT["plugin_loaded"] = plugin is not None
    if plugin is None:
        finish()
    from cloud_removal.processing_provider import settings
    from cloud_removal.processing_provider.styling import style_true_colour

    if JOB.get("model"):  # a weights file instead of the shipped model (to try other weights by hand)
        settings.set_method_model("dbcr", JOB["model"])
    # Layers without a CRS (DE's RGB PNG) must not stop the session with a question.
    QgsSettings().setValue("Projections/unknownCrsBehavior", "UseProjectCrs")

    window = iface.mainWindow()
    window.resize(QSize(1500, 950))
    for path in JOB["layers"]:
        layer = iface.addRasterLayer(path, Path(path).stem)
        if layer is not None and layer.bandCount() >= 12:
            style_true_colour(layer)
    iface.setActiveLayer(QgsProject.instance().mapLayersByName(Path(JOB["layers"][0]).stem)[0])
    iface.mapCanvas().zoomToFullExtent()
    REPORT["toolbar_action"] = plugin.action is not None and plugin.action.objectName()
    plugin.action.setChecked(True)  # what clicking the toolbar icon does
    dock = plugin.dock
    dock.setMinimumWidth(420)
    wait_for(lambda: dock.state.kind != "checking", dock_ready, 90, "the backend check")


def dock_ready() -> None:
    """Record what the panel shows, screenshot it, then open the toolbox dialog."""
    dock = plugins["cloud_removal"].dock
    REPORT["dock"] = {
        "visible": dock.isVisible(),
        "status": dock.status.text(),
        "inputs": dock.inputs.text(),
        "model": dock.picker.combo.currentText(),
        "card": dock.picker.card.text(),
        "device": dock.detected.text(),
        "nfe": dock.nfe.value(),
    }
    dock.advanced.setCollapsed(False)  # show every setting in the screenshot
    QgsApplication.processEvents()
    shoot(dock, "dock.png")
    import processing

    dialog = processing.createAlgorithmDialog("cloudremoval:dbcr", dock.parameters())
    dialog.resize(QSize(1000, 760))
    dialog.show()
    REPORT["dialog_title"] = dialog.windowTitle()

    def shoot_dialog() -> None:
        shoot(dialog, "toolbox-dialog.png")
        dialog.close()
        later(setup_dialog, 300)

    later(shoot_dialog, 800)


def setup_dialog() -> None:
    """Open the backend set-up dialog from the plugin menu's action (without starting it), screenshot it."""
    plugin = plugins["cloud_removal"]
    plugin.setup_action.trigger()
    dialog = plugin.setup_dialog
    REPORT["setup_dialog"] = {"visible": dialog.isVisible(), "create_enabled": dialog.create_button.isEnabled()}

    def shoot_setup() -> None:
        shoot(dialog, "setup-dialog.png")
        dialog.close()
        later(run if JOB.get("run") else finish, 300)

    later(shoot_setup, 500)


def run() -> None:
    """Run DB-CR from the panel with a tiny tile, wait for the styled result, screenshot the map."""
    dock = plugins["cloud_removal"].dock
    dock.tile.setValue(int(JOB.get("tile_size", 64)))
    dock.device.setCurrentIndex(dock.device.findData("cpu"))
    dock.run_button.click()
    REPORT["run_started"] = dock.run.running()
    REPORT["run_message"] = dock.message.text()
    if not dock.run.running():
        finish()
    wait_for(lambda: not dock.run.running(), run_done, float(JOB.get("run_timeout", 150)), "the run")


def run_done() -> None:
    """Record the result layer and its style, screenshot QGIS with it on top."""
    dock = plugins["cloud_removal"].dock
    REPORT["run_message"] = dock.message.text()
    results = [x for x in QgsProject.instance().mapLayers().values() if "cloud-free" in x.name()]
    if results and isinstance(results[0], QgsRasterLayer):
        layer = results[0]
        renderer = layer.renderer()
        REPORT["result"] = {
            "name": layer.name(),
            "source": layer.source(),
            "renderer": renderer.type(),
            "bands": [renderer.redBand(), renderer.greenBand(), renderer.blueBand()]
            if renderer.type() == "multibandcolor"
            else [],
        }
        iface.setActiveLayer(layer)
        iface.mapCanvas().setExtent(layer.extent())
        iface.mapCanvas().refresh()
    wait_for(lambda: not iface.mapCanvas().isDrawing(), lambda: later(shoot_result, 500), 30, "the map")


def shoot_result() -> None:
    """Screenshot the main window (map, layers panel, Cloud removal panel), then run the other methods."""
    shoot(iface.mainWindow(), "result.png")
    later(next_method, 300)


def next_method() -> None:
    """Run the job's next other method (``also``: method, NFE, tile, layers to add first) from the panel."""
    pending = JOB.get("also", [])
    if not pending:
        finish()
        return
    step = pending.pop(0)
    for path in step.get("layers", []):  # e.g. DE's RGB sample
        iface.addRasterLayer(path, Path(path).stem)
    # The panel picks the active layer first: make it the step's input, not the previous run's result.
    iface.setActiveLayer(QgsProject.instance().mapLayersByName(step["input"])[0])
    dock = plugins["cloud_removal"].dock
    dock.method.setCurrentIndex(dock.method.findData(step["method"]))
    dock.nfe.setValue(int(step["nfe"]))
    dock.tile.setValue(int(step["tile"]))
    QgsApplication.processEvents()
    dock.run_button.click()
    entry = {"method": step["method"], "started": dock.run.running(), "message": dock.message.text()}
    REPORT.setdefault("methods", []).append(entry)
    if not dock.run.running():
        finish()
    wait_for(lambda: not dock.run.running(), method_done, float(JOB.get("run_timeout", 150)), step["method"])


def method_done() -> None:
    """Record the newest result layer and its style, screenshot the window with it on top."""
    entry = REPORT["methods"][-1]
    entry["message"] = plugins["cloud_removal"].dock.message.text()
    layers = [x for x in QgsProject.instance().layerTreeRoot().layerOrder() if "cloud-free" in x.name()]
    if layers and isinstance(layers[0], QgsRasterLayer):
        renderer = layers[0].renderer()
        entry["result"] = {"name": layers[0].name(), "renderer": renderer.type(), "bands": layers[0].bandCount()}
        iface.setActiveLayer(layers[0])
        iface.mapCanvas().setExtent(layers[0].extent())
        iface.mapCanvas().refresh()

    def shoot_method() -> None:
        shoot(iface.mainWindow(), f"result-{entry['method']}.png")
        later(next_method, 300)

    wait_for(lambda: not iface.mapCanvas().isDrawing(), lambda: later(shoot_method, 500), 30, "the map")


QTimer.singleShot(1500, guarded(start))


def give_up() -> None:
    """Whatever hangs, QGIS leaves with a report."""
    REPORT["errors"].append("overall timeout")
    finish()


QTimer.singleShot(int(JOB.get("overall_timeout", 240) * 1000), give_up)
