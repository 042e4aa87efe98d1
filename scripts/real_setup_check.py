#!/usr/bin/python3
"""Set up the backend for real, as a user of the plugin zip does, in a throwaway QGIS profile; then run it once.

What a user gets from plugins.qgis.org is the zip and no backend. This script builds ``dist/cloud_removal.zip``,
unzips it into ``<root>/profiles/default/python/plugins`` (a profile of its own, never the user's), starts a
headless QGIS on that profile, and presses "Create backend" in the plugin's set-up dialog: the real
``SetupTask`` creates the virtual environment in the profile, pip-installs the pinned requirements (it downloads
what pip does not find at hand) and runs the self-check. Then the new environment removes the clouds from the
bundled sample (DB-CR, NFE 1) from the unzipped plugin folder.

Usage: ``/usr/bin/python3 scripts/real_setup_check.py [--root DIR] [--zip FILE] [--summary FILE]``; it prints
the set-up's log, its wall time and the environment's size, and exits non-zero when anything fails. The root is
kept (``--root`` reuses one: a second run repairs the environment in place, which is quicker).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).absolute().parent.parent
PLUGIN_NAME = "cloud_removal"
SAMPLE_S2 = "sample/ROIs1868_summer_s2_cloudy_19_p30.tif"
SAMPLE_S1 = "sample/ROIs1868_summer_s1_19_p30.tif"
# Debian's /usr/bin/qgis_process wrapper adds --noversioncheck, which qgis_process 3.22 rejects.
QGIS_PROCESS = os.environ.get("QGIS_PROCESS", "/usr/bin/qgis_process.bin")


def folder_bytes(folder: Path) -> int:
    """Return the size of the files under ``folder`` (links not followed)."""
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(base) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def unzip_plugin(archive: Path, profile: Path) -> Path:
    """Unzip the plugin into the profile's plugin folder, as the plugin manager does; return the plugin folder."""
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(plugins)
    ini = profile / "QGIS" / "QGIS3.ini"  # the plugin manager enables what it installs
    if not ini.exists():
        ini.parent.mkdir(parents=True, exist_ok=True)
        ini.write_text(f"[PythonPlugins]\n{PLUGIN_NAME}=true\n", encoding="utf-8")
    return plugins / PLUGIN_NAME


def run_setup(plugins: Path, timeout: float) -> dict[str, object]:
    """Start QGIS on the profile, run the set-up dialog's task to its end; return what happened."""
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication

    # QGIS's names, so that QgsSettings is the profile's QGIS/QGIS3.ini, which qgis_process reads afterwards
    QCoreApplication.setOrganizationName("QGIS")
    QCoreApplication.setOrganizationDomain("qgis.org")
    QCoreApplication.setApplicationName("QGIS3")
    application = QgsApplication([], True)
    application.initQgis()
    sys.path.insert(0, str(plugins))
    from cloud_removal.plugin import settings, setup_dialog

    dialog = setup_dialog.SetupDialog()
    print(f"profile: {QgsApplication.qgisSettingsDirPath()}\nvenv: {dialog.venv}\nbase Python: {dialog.base_python}")
    started = time.monotonic()
    dialog.start()
    task = dialog.task
    if task is None:
        return {"ok": False, "why": dialog.status.text() or "the set-up did not start (no base Python?)"}
    task.line.connect(lambda text: print(f"[{time.monotonic() - started:7.1f}s] {text}", flush=True))
    error = ""
    while dialog.task is not None and time.monotonic() - started < timeout:
        QgsApplication.processEvents()
        time.sleep(0.05)
        error = task.error or error
    seconds = time.monotonic() - started
    if dialog.task is not None:
        task.cancel()
        return {"ok": False, "why": f"the set-up took more than {timeout:.0f} s", "seconds": seconds}
    status = re.sub(r"<[^>]+>", "", dialog.status.text())
    python = str(settings.backend_python())
    torch = ""  # the version pip chose: the pinned one, never a newer release
    if Path(python).is_file():
        version = [python, "-c", "import importlib.metadata as m; print(m.version('torch'))"]
        torch = subprocess.run(version, capture_output=True, text=True, check=False).stdout.strip()
    return {
        "ok": "The backend is ready" in status and python == str(settings.venv_python(dialog.venv)),
        "why": error or status,
        "seconds": round(seconds, 1),
        "python": python,
        "venv": str(dialog.venv),
        "venv_bytes": folder_bytes(dialog.venv),
        "torch": torch,
    }


def timed_run(command: list[str], output: Path, **options: Any) -> dict[str, object]:
    """Run ``command``, print the end of its output; ok when it exits 0 and ``output`` is a non-empty file."""
    started = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, check=False, **options)
    seconds = time.monotonic() - started
    print(completed.stdout[-2000:] + completed.stderr[-2000:])
    ok = completed.returncode == 0 and output.is_file() and output.stat().st_size > 0
    return {"ok": ok, "seconds": round(seconds, 1), "output": str(output), "exit_code": completed.returncode}


def run_backend(python: Path, plugin: Path, output: Path) -> dict[str, object]:
    """Remove the clouds from the sample with the new environment (DB-CR, NFE 1), from the plugin folder."""
    command = [str(python), "-m", "backend", "run", "dbcr", "--optical", SAMPLE_S2, "--sar", SAMPLE_S1,
               "--output", str(output), "--nfe", "1"]  # fmt: skip
    return timed_run(command, output, cwd=plugin)


def run_algorithm(plugin: Path, output: Path) -> dict[str, object]:
    """Run the Processing algorithm through ``qgis_process`` on the same profile: it finds the new backend itself."""
    command = [QGIS_PROCESS, "run", "cloudremoval:dbcr", "--", f"OPTICAL={plugin / SAMPLE_S2}",
               f"SAR={plugin / SAMPLE_S1}", "NFE=1", f"OUTPUT={output}"]  # fmt: skip
    environment = {**os.environ, "PATH": os.pathsep.join([str(Path(QGIS_PROCESS).parent), os.environ["PATH"]])}
    return timed_run(command, output, env=environment)


def main() -> int:
    """Build, unzip, set up, run; print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="the throwaway QGIS profiles folder (default: a new temp one)")
    parser.add_argument("--zip", type=Path, help="a built plugin zip (default: build dist/cloud_removal.zip)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the set-up may take")
    parser.add_argument("--summary", type=Path, help="also write the summary there, as JSON")
    arguments = parser.parse_args()

    archive = arguments.zip
    if archive is None:
        archive = REPO / "dist" / f"{PLUGIN_NAME}.zip"
        subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "--output", str(archive)], check=True)
    root = (arguments.root or Path(tempfile.mkdtemp(prefix="cloud-removal-real-setup-"))).absolute()
    profile = root / "profiles" / "default"
    plugin = unzip_plugin(archive, profile)
    os.environ.update({"QGIS_CUSTOM_CONFIG_PATH": str(root), "QT_QPA_PLATFORM": "offscreen"})
    runtime = root / "runtime"  # Qt wants its runtime folder private
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    os.environ.pop("CLOUD_REMOVAL_PYTHON", None)  # the set-up's own environment, not a configured one

    summary: dict[str, object] = {"root": str(root), "setup": run_setup(profile / "python" / "plugins",
                                                                          arguments.timeout)}  # fmt: skip
    setup = summary["setup"]
    assert isinstance(setup, dict)
    if setup["ok"]:
        summary["run"] = run_backend(Path(str(setup["python"])), plugin, root / "cloud-free.tif")
        summary["qgis_process"] = run_algorithm(plugin, root / "qgis-cloud-free.tif")
    text = json.dumps(summary, indent=2)
    print(text)
    if arguments.summary:
        arguments.summary.write_text(text, encoding="utf-8")
    stages = [summary.get(stage) for stage in ("run", "qgis_process")]
    return 0 if setup["ok"] and all(isinstance(stage, dict) and stage["ok"] for stage in stages) else 1


if __name__ == "__main__":
    sys.exit(main())
