"""What the panel alone remembers: the set-up dialog's choices, the method last chosen, imported models.

Where the backend's Python is and the run choices are read by the Processing algorithms too, so they live beside
them in ``processing_provider/settings.py``.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsSettings

from ..processing_provider.settings import CHOICES, profile_dir

SETTINGS_TORCH_INDEX = "cloud_removal/torch_index_url"
"""QgsSettings key: a pip index for torch when the backend is set up (e.g. https://download.pytorch.org/whl/cpu)."""

SETTINGS_SETUP_OFFERED = "cloud_removal/setup_offered"
"""QgsSettings key: the plugin has once offered to set up the backend (it offers only once on its own)."""


def imported_models_dir() -> Path:
    """Return where imported ``.safetensors`` models are copied."""
    return profile_dir() / "models"


def chosen_method(default: str = "dbcr") -> str:
    """Return the method last chosen in the dock."""
    return str(QgsSettings().value(CHOICES + "method", default, type=str) or default)


def set_chosen_method(algorithm: str) -> None:
    """Store the method chosen in the dock."""
    QgsSettings().setValue(CHOICES + "method", algorithm)
