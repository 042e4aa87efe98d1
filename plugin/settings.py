"""Where the backend's Python lives: the one setting the Processing algorithms need.

Importable without a GUI (qgis_process, tests): it uses only ``QgsSettings`` and the standard library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from qgis.core import QgsSettings

PLUGIN_DIR = Path(__file__).resolve().parent.parent
"""The plugin folder (the repository root); the backend runs with it as working directory."""

ENV_BACKEND_PYTHON = "CLOUD_REMOVAL_PYTHON"
"""Environment variable naming the backend's Python; it wins over the QGIS setting."""

SETTINGS_BACKEND_PYTHON = "cloud_removal/backend_python"
"""QgsSettings key naming the backend's Python (Settings › Options › Advanced)."""


def default_backend_python() -> Path:
    """Return the Python of the virtual environment that ``make`` creates in the plugin folder."""
    if sys.platform == "win32":
        return PLUGIN_DIR / ".venv" / "Scripts" / "python.exe"
    return PLUGIN_DIR / ".venv" / "bin" / "python"


def backend_python() -> Path:
    """Return the backend's Python: the environment variable, else the QGIS setting, else the plugin's ``.venv``."""
    configured = os.environ.get(ENV_BACKEND_PYTHON, "").strip()
    if not configured:
        configured = str(QgsSettings().value(SETTINGS_BACKEND_PYTHON, "", type=str) or "").strip()
    return Path(configured).expanduser() if configured else default_backend_python()


def set_backend_python(path: str) -> None:
    """Store the backend's Python in the QGIS settings; an empty string goes back to the default."""
    settings = QgsSettings()
    if path.strip():
        settings.setValue(SETTINGS_BACKEND_PYTHON, path.strip())
    else:
        settings.remove(SETTINGS_BACKEND_PYTHON)
