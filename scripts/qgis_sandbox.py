#!/usr/bin/python3
"""Run QGIS's ``qgis_process`` with this plugin enabled in a throwaway profile (never the user's own).

QGIS loads a plugin by its folder name from a folder on ``QGIS_PLUGINPATH``, and runs its Processing provider only
when the profile enables it. The repository may be cloned under any name, so the sandbox links it as
``cloud_removal`` in a temporary folder and writes a fresh profile that enables it.

Usage: ``scripts/qgis_sandbox.py list``, ``scripts/qgis_sandbox.py run cloudremoval:dbcr -- OPTICAL=... ``
(everything after the script name goes to ``qgis_process``). Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

PLUGIN_NAME = "cloud_removal"
REPO = Path(__file__).absolute().parent.parent
# Debian's /usr/bin/qgis_process wrapper adds --noversioncheck, which qgis_process 3.22 rejects.
QGIS_PROCESS = os.environ.get("QGIS_PROCESS", "/usr/bin/qgis_process.bin")


def prepare(root: Path, plugin_dir: Path = REPO) -> dict[str, str]:
    """Lay out a plugin folder and a profile under ``root``; return this process's environment changed to use them."""
    plugins = root / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / PLUGIN_NAME
    if not link.exists():
        link.symlink_to(plugin_dir, target_is_directory=True)
    config = root / "config"
    ini = config / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text(f"[PythonPlugins]\n{PLUGIN_NAME}=true\n", encoding="utf-8")
    environment = {
        **os.environ,
        # QGIS's embedded Python finds its standard library through the first `python3` on PATH: make that
        # Debian's, not a pyenv or virtual-environment one that happens to come first.
        "PATH": os.pathsep.join([str(Path(QGIS_PROCESS).parent), os.environ.get("PATH", "")]),
        "QGIS_PLUGINPATH": str(plugins),
        "QGIS_CUSTOM_CONFIG_PATH": str(config),
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(root),
    }
    for variable in ("PYTHONHOME", "PYTHONPATH"):  # QGIS sets up its own Python
        environment.pop(variable, None)
    return environment


def main(arguments: list[str]) -> int:
    """Run ``qgis_process`` with ``arguments`` in a fresh sandbox; return its exit code."""
    with tempfile.TemporaryDirectory(prefix="qgis-sandbox-") as root:
        return subprocess.call([QGIS_PROCESS, *arguments], env=prepare(Path(root)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
