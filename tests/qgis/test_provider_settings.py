"""Where the backend's Python is: the environment variable, else the QGIS setting, else the plugin's .venv.

These settings are the algorithms' (``processing_provider/settings.py``); the panel imports them from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qgis_support import REPO


def test_backend_python_precedence(plugin_package: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cloud_removal.processing_provider import settings

    monkeypatch.delenv(settings.ENV_BACKEND_PYTHON, raising=False)
    settings.set_backend_python("")
    assert settings.PLUGIN_DIR == REPO.resolve()
    assert settings.backend_python() == REPO.resolve() / ".venv" / "bin" / "python"

    settings.set_backend_python(str(tmp_path / "from-settings" / "python"))
    try:
        assert settings.backend_python() == tmp_path / "from-settings" / "python"
        monkeypatch.setenv(settings.ENV_BACKEND_PYTHON, str(tmp_path / "from-env" / "python"))
        assert settings.backend_python() == tmp_path / "from-env" / "python"
    finally:
        settings.set_backend_python("")


def test_the_algorithms_never_import_the_gui_folder() -> None:
    for path in (REPO / "processing_provider").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from ..plugin" not in text and "import plugin" not in text, path.name
