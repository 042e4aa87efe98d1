"""The plugin class QGIS loads: it registers the Processing provider and nothing else (yet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qgis.core import QgsApplication

from ..processing_provider.provider import CloudRemovalProvider

if TYPE_CHECKING:
    from qgis.gui import QgisInterface


class CloudRemovalPlugin:
    """Registers the "Cloud removal" Processing provider with QGIS and removes it on unload."""

    def __init__(self, iface: QgisInterface | None) -> None:
        """Keep the QGIS interface (None under qgis_process) for the GUI parts to come."""
        self.iface = iface
        self.provider: CloudRemovalProvider | None = None

    def initProcessing(self) -> None:
        """Register the provider; qgis_process calls only this, so no GUI code belongs here."""
        registry = QgsApplication.processingRegistry()
        stale = registry.providerById(CloudRemovalProvider.ID)
        if stale is not None:
            # addProvider() deletes a provider whose id is taken (plugin reload): remove the old one first.
            registry.removeProvider(stale)
        self.provider = CloudRemovalProvider()
        registry.addProvider(self.provider)

    def initGui(self) -> None:
        """Set up the plugin inside the QGIS desktop: for now, the provider."""
        self.initProcessing()

    def unload(self) -> None:
        """Remove the provider when the plugin is disabled, reloaded or QGIS closes."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
