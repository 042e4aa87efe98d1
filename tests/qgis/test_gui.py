"""The plugin as a user sees it: the real QGIS desktop under Xvfb, driven by ``gui_driver.py``.

QGIS starts once (about 20 s) with the plugin enabled in a throwaway profile, loads the bundled sample, opens the
"Cloud removal" panel from its toolbar action, opens the DB-CR dialog and, when the shipped model is there, runs
DB-CR from the panel with small tiles. Screenshots go to a temporary folder and are copied to ``docs/screenshots``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from qgis.PyQt.QtGui import QImage
from qgis_support import REPO, SAMPLE_RGB, SAMPLE_S1, SAMPLE_S2, WEIGHTS, needs_model, sandbox

XVFB = shutil.which("xvfb-run")
QGIS_DESKTOP = Path("/usr/bin/qgis.bin")
DOCS = REPO / "docs" / "screenshots"
# NFE 0: each model's own default, so the screenshots show what a user gets; one 256 px tile per 256 px sample.
OTHER_METHODS = [
    {"method": "diffcr", "model": "diffcr-lite", "nfe": 0, "tile": 256, "label": "DiffCR", "input": SAMPLE_S2.stem},
    {
        "method": "de",
        "model": "de-lite",
        "nfe": 0,
        "tile": 256,
        "label": "DE",
        "layers": [str(SAMPLE_RGB)],
        "input": SAMPLE_RGB.stem,
    },
]

pytestmark = pytest.mark.skipif(
    XVFB is None or not QGIS_DESKTOP.exists(), reason="needs xvfb-run and the QGIS desktop (qgis.bin)"
)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run QGIS once; return the driver's report."""
    root = tmp_path_factory.mktemp("qgis-gui")
    job = {
        "screenshots": str(root / "screenshots"),
        "report": str(root / "report.json"),
        "layers": [str(SAMPLE_S2), str(SAMPLE_S1)],
        "run": WEIGHTS.exists(),
        "tile_size": 64,
        "run_timeout": 150,
        "overall_timeout": 400,
        # After DB-CR, the other methods whose models ship, from the same panel.
        "also": [
            step for step in OTHER_METHODS if (REPO / "models" / "weights" / f"{step['model']}.safetensors").exists()
        ],
    }
    (root / "job.json").write_text(json.dumps(job))
    environment = sandbox.prepare(root / "sandbox", REPO)
    environment.pop("CLOUD_REMOVAL_PYTHON", None)
    environment.update({"QT_QPA_PLATFORM": "xcb", "CLOUD_REMOVAL_GUI_JOB": str(root / "job.json")})
    command = [XVFB, "-a", "-s", "-screen 0 1600x1000x24", str(QGIS_DESKTOP), "--nologo", "--noversioncheck",
               "--code", str(Path(__file__).with_name("gui_driver.py"))]  # fmt: skip
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=440, check=False)
    report_path = root / "report.json"
    assert report_path.exists(), f"QGIS wrote no report (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
    report = json.loads(report_path.read_text())
    DOCS.mkdir(parents=True, exist_ok=True)
    for shot in report["screenshots"]:
        shutil.copy(shot, DOCS / Path(shot).name)
    return report


def image(path: str) -> QImage:
    picture = QImage(path)
    assert not picture.isNull(), path
    return picture


def test_qgis_loads_the_plugin_and_the_panel_opens_from_its_toolbar_action(session: dict[str, Any]) -> None:
    assert session["errors"] == []
    assert session["plugin_loaded"] is True
    assert session["toolbar_action"] == "CloudRemovalPanelAction"
    dock = session["dock"]
    assert dock["visible"] is True
    assert "Backend" in dock["status"]
    assert dock["inputs"] == f"Optical: {SAMPLE_S2.stem} · Sentinel-1: {SAMPLE_S1.stem}"
    assert dock["nfe"] >= 1 and dock["model"].startswith("dbcr-lite")
    assert "CPU" in dock["device"] or "GPU" in dock["device"]


def test_screenshots_of_the_panel_and_the_dialog(session: dict[str, Any]) -> None:
    shots = {Path(shot).name: shot for shot in session["screenshots"]}
    panel, dialog = image(shots["dock.png"]), image(shots["toolbox-dialog.png"])
    assert panel.width() >= 300 and panel.height() >= 400
    assert dialog.width() >= 800 and dialog.height() >= 600
    assert session["dialog_title"] == "DB-CR (Sentinel-1 + Sentinel-2)"
    assert (DOCS / "dock.png").exists() and (DOCS / "toolbox-dialog.png").exists()


def test_the_set_up_dialog_opens_from_the_plugin_menu(session: dict[str, Any]) -> None:
    assert session["setup_dialog"] == {"visible": True, "create_enabled": True}
    assert image(next(shot for shot in session["screenshots"] if shot.endswith("setup-dialog.png"))).width() >= 600


@needs_model
def test_run_on_current_layers_adds_a_true_colour_result(session: dict[str, Any]) -> None:
    assert session.get("run_started") is True, session.get("run_message")
    result = session.get("result")
    assert result is not None, session.get("run_message")
    assert result["name"] == f"{SAMPLE_S2.stem} cloud-free (DB-CR)"
    assert result["renderer"] == "multibandcolor" and result["bands"] == [4, 3, 2]
    assert "Done in" in session["run_message"]
    window = image(next(shot for shot in session["screenshots"] if shot.endswith("result.png")))
    assert window.width() >= 1200
    assert (DOCS / "result.png").exists()


@pytest.mark.parametrize("step", OTHER_METHODS, ids=[step["method"] for step in OTHER_METHODS])
def test_the_other_methods_run_from_the_panel_too(session: dict[str, Any], step: dict[str, Any]) -> None:
    if not (REPO / "models" / "weights" / f"{step['model']}.safetensors").exists():
        pytest.skip(f"{step['model']} is not shipped")
    runs = {entry["method"]: entry for entry in session.get("methods", [])}
    assert step["method"] in runs, session["errors"]
    entry = runs[step["method"]]
    assert entry["started"] is True and "Done in" in entry["message"], entry["message"]
    assert entry["result"]["name"] == f"{step['input']} cloud-free ({step['label']})"  # made from the sample
    assert entry["result"]["renderer"] == "multibandcolor"
    assert (DOCS / f"result-{step['method']}.png").exists()
