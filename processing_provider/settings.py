"""What the algorithms read from the plugin's settings: where the backend's Python is, and the run choices.

The run choices are written by the dock widget and are the defaults of the Processing algorithms, so a setting
chosen once in the dock is what the toolbox dialog, batch mode and the modeler start from. Their defaults and
bounds come from the backend's table of run settings (``backend/protocol.py``).

Importable without a GUI (qgis_process, tests): it uses only ``QgsSettings``, ``QgsApplication`` and the standard
library.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import QgsApplication, QgsSettings

from ..backend.protocol import RUN_SETTINGS, Setting

PLUGIN_DIR = Path(__file__).resolve().parent.parent
"""The plugin folder (the repository root); the backend runs with it as working directory."""

ENV_BACKEND_PYTHON = "CLOUD_REMOVAL_PYTHON"
"""Environment variable naming the backend's Python; it wins over the QGIS setting."""

SETTINGS_BACKEND_PYTHON = "cloud_removal/backend_python"
"""QgsSettings key naming the backend's Python (Settings › Options › Advanced)."""

CHOICES = "cloud_removal/choices/"
"""QgsSettings prefix of the run choices."""

DEVICES = RUN_SETTINGS["device"].choices
RUNTIMES = RUN_SETTINGS["runtime"].choices
_TILE, _OVERLAP, _THRESHOLD = RUN_SETTINGS["tile_size"], RUN_SETTINGS["overlap"], RUN_SETTINGS["cloud_threshold"]


def unset_value(setting: Setting) -> int:
    """The number a widget of ``setting`` shows for "no value" (0: the model's tile size, -1: a quarter tile)."""
    assert setting.unset is not None, setting.name
    return setting.unset


def profile_dir() -> Path:
    """Return the plugin's folder in the QGIS profile (the managed backend and imported models live there)."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "cloud_removal"


def managed_venv_dir() -> Path:
    """Return where the set-up dialog creates the backend's virtual environment."""
    return profile_dir() / "venv"


def venv_python(venv: Path, platform: str = sys.platform) -> Path:
    """Return the Python executable of a virtual environment folder."""
    if platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def default_backend_python() -> Path:
    """Return the backend's Python when none is configured.

    A developer's ``.venv`` in the plugin folder (``make``) comes first; otherwise the environment the set-up
    dialog creates in the QGIS profile, whether it exists yet or not.
    """
    developer = venv_python(PLUGIN_DIR / ".venv")
    if developer.exists():
        return developer
    return venv_python(managed_venv_dir())


def backend_python() -> Path:
    """Return the backend's Python: the environment variable, else the QGIS setting, else the default."""
    configured = _configured()[0]
    return Path(configured).expanduser() if configured else default_backend_python()


def backend_python_origin() -> str:
    """Say where :func:`backend_python` came from, for the status line."""
    value, origin = _configured()
    if value:
        return origin
    if default_backend_python() == venv_python(PLUGIN_DIR / ".venv"):
        return "the plugin folder's .venv"
    return "the QGIS profile"


def _configured() -> tuple[str, str]:
    configured = os.environ.get(ENV_BACKEND_PYTHON, "").strip()
    if configured:
        return configured, f"the {ENV_BACKEND_PYTHON} environment variable"
    configured = str(QgsSettings().value(SETTINGS_BACKEND_PYTHON, "", type=str) or "").strip()
    return configured, "the plugin settings"


def set_backend_python(path: str) -> None:
    """Store the backend's Python in the QGIS settings; an empty string goes back to the default."""
    settings = QgsSettings()
    if path.strip():
        settings.setValue(SETTINGS_BACKEND_PYTHON, path.strip())
    else:
        settings.remove(SETTINGS_BACKEND_PYTHON)


@dataclass
class RunChoices:
    """The choices shared by every method, as the dock shows them.

    Attributes:
        device: ``auto``, ``cpu`` or ``cuda``.
        tile_size: tile side in pixels; 0 = the model's own.
        overlap: pixels shared by tiles; -1 = the backend's default (a quarter of the tile).
        runtime: ``torch`` or ``onnxruntime``.
        keep_clear: keep the input where it is clear (s2cloudless mask); the model fills only the clouds.
        cloud_threshold: cloud probability (0-1) above which a pixel counts as cloud.
    """

    device: str = RUN_SETTINGS["device"].default
    tile_size: int = unset_value(_TILE)
    overlap: int = unset_value(_OVERLAP)
    runtime: str = RUN_SETTINGS["runtime"].default
    keep_clear: bool = RUN_SETTINGS["keep_clear"].default
    cloud_threshold: float = _THRESHOLD.default


def load_choices() -> RunChoices:
    """Read the run choices; anything missing or unusable takes its default."""
    settings, default = QgsSettings(), RunChoices()
    device = str(settings.value(CHOICES + "device", default.device, type=str))
    runtime = str(settings.value(CHOICES + "runtime", default.runtime, type=str))
    return RunChoices(
        device=device if device in DEVICES else default.device,
        tile_size=_clamp(int(settings.value(CHOICES + "tile_size", default.tile_size, type=int)), _TILE.unset, _TILE),
        overlap=_clamp(int(settings.value(CHOICES + "overlap", default.overlap, type=int)), _OVERLAP.unset, _OVERLAP),
        runtime=runtime if runtime in RUNTIMES else default.runtime,
        keep_clear=bool(settings.value(CHOICES + "keep_clear", default.keep_clear, type=bool)),
        cloud_threshold=_clamp(
            float(settings.value(CHOICES + "cloud_threshold", default.cloud_threshold, type=float)),
            _THRESHOLD.minimum,
            _THRESHOLD,
        ),
    )


def _clamp(value: Any, low: Any, setting: Any) -> Any:
    """``value`` within ``low`` (the widget's "no value", or the setting's minimum) and the setting's maximum."""
    return min(setting.maximum, max(low, value))


def save_choices(choices: RunChoices) -> None:
    """Store the run choices."""
    settings = QgsSettings()
    for key, value in vars(choices).items():
        settings.setValue(CHOICES + key, value)


def method_model(algorithm: str, default: str) -> str:
    """Return the model chosen for a method (a shipped name or a weights file), or ``default``."""
    return str(QgsSettings().value(f"{CHOICES}model/{algorithm}", default, type=str) or default)


def set_method_model(algorithm: str, model: str) -> None:
    """Store the model chosen for a method."""
    QgsSettings().setValue(f"{CHOICES}model/{algorithm}", model)


def method_nfe(algorithm: str, default: int | None) -> int | None:
    """Return the NFE chosen for a method; None (stored as 0) means the model card's own."""
    value = int(QgsSettings().value(f"{CHOICES}nfe/{algorithm}", default or 0, type=int))
    return value if value > 0 else None


def set_method_nfe(algorithm: str, nfe: int | None) -> None:
    """Store the NFE chosen for a method (None: the model card's own)."""
    QgsSettings().setValue(f"{CHOICES}nfe/{algorithm}", nfe or 0)


def clear_choices() -> None:
    """Forget every run choice (tests, and "Reset" in the dock)."""
    QgsSettings().remove(CHOICES.rstrip("/"))
