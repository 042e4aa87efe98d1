"""QGIS entry point of the Cloud Removal plugin: the repository root is the plugin folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qgis.gui import QgisInterface

    from .plugin.plugin import CloudRemovalPlugin


def classFactory(iface: QgisInterface) -> CloudRemovalPlugin:
    """Return the plugin instance QGIS loads (QGIS calls this by name)."""
    from .plugin.plugin import CloudRemovalPlugin

    return CloudRemovalPlugin(iface)
