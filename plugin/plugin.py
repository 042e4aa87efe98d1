"""The plugin class QGIS loads: the Processing provider, the "Cloud removal" panel and the backend set-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qgis.core import QgsApplication, QgsSettings
from qgis.gui import QgsMessageBar
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QPushButton

try:  # Qt 6 (QGIS 4) moved QAction to QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt 5
    from qgis.PyQt.QtWidgets import QAction

from ..processing_provider import settings as run_settings
from ..processing_provider import warm_worker
from ..processing_provider.backend_process import backend_problem
from ..processing_provider.compat import MESSAGE_INFO
from ..processing_provider.inputs import ICONS
from ..processing_provider.provider import CloudRemovalProvider
from . import settings

if TYPE_CHECKING:
    from qgis.gui import QgisInterface

    from .dock import CloudRemovalDock
    from .setup_dialog import SetupDialog

ICON = ICONS / "cloud_removal.svg"
MENU = "&Cloud Removal"


class CloudRemovalPlugin:
    """Registers the "Cloud removal" Processing provider; in the desktop, adds the panel, its menu entry and icon."""

    def __init__(self, iface: QgisInterface | None) -> None:
        """Keep the QGIS interface (None under qgis_process)."""
        self.iface = iface
        self.provider: CloudRemovalProvider | None = None
        self.action: QAction | None = None
        self.setup_action: QAction | None = None
        self.dock: CloudRemovalDock | None = None
        self.setup_dialog: SetupDialog | None = None
        self._quit_connected = False

    def initProcessing(self) -> None:
        """Register the provider; qgis_process calls only this, so no GUI code belongs here."""
        registry = QgsApplication.processingRegistry()
        stale = registry.providerById(CloudRemovalProvider.ID)
        if stale is not None:
            # addProvider() deletes a provider whose id is taken (plugin reload): remove the old one first.
            registry.removeProvider(stale)
        self.provider = CloudRemovalProvider()
        registry.addProvider(self.provider)
        application = QgsApplication.instance()
        if application is not None and not self._quit_connected:
            # the warm backend worker ends with QGIS (its stdin closing would end it too, but not at once)
            application.aboutToQuit.connect(warm_worker.shutdown)
            self._quit_connected = True

    def initGui(self) -> None:
        """Set up the plugin inside the QGIS desktop: the provider, the panel's action, the set-up offer."""
        self.initProcessing()
        if self.iface is None:
            return
        window = self.iface.mainWindow()
        self.action = QAction(QIcon(str(ICON)), "Cloud removal panel", window)
        self.action.setObjectName("CloudRemovalPanelAction")
        self.action.setCheckable(True)
        self.action.setToolTip("Remove clouds from satellite images (DB-CR, DiffCR, DE)")
        self.action.toggled.connect(self.show_dock)
        self.setup_action = QAction("Set up the backend…", window)
        self.setup_action.triggered.connect(self.open_setup)
        self.iface.addPluginToMenu(MENU, self.action)
        self.iface.addPluginToMenu(MENU, self.setup_action)
        self.iface.addToolBarIcon(self.action)
        self.offer_setup()

    def show_dock(self, visible: bool = True) -> None:
        """Show (creating it on first use) or hide the panel."""
        if self.iface is None:
            return
        if self.dock is None:
            if not visible:
                return
            from .dock import CloudRemovalDock

            self.dock = CloudRemovalDock(self.iface, self.open_setup, self.iface.mainWindow())
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self._dock_visibility)
        self.dock.setUserVisible(visible)

    def _dock_visibility(self, visible: bool) -> None:
        if self.action is not None and self.action.isChecked() != visible:
            self.action.setChecked(visible)

    def open_setup(self) -> None:
        """Open the dialog that creates or repairs the backend environment."""
        if self.iface is None:
            return
        from .setup_dialog import SetupDialog

        if self.setup_dialog is None:
            gpus = self.dock.gpus if self.dock is not None else None
            self.setup_dialog = SetupDialog(self.iface.mainWindow(), gpus)
            self.setup_dialog.backend_changed.connect(self._backend_changed)
        self.setup_dialog.show()
        self.setup_dialog.raise_()

    def _backend_changed(self) -> None:
        if self.dock is not None:
            self.dock.refresh_backend(use_cache=False)

    def offer_setup(self) -> None:
        """The first time QGIS starts without a backend, offer (once, in the message bar) to set one up."""
        stored = QgsSettings()
        if self.iface is None or stored.value(settings.SETTINGS_SETUP_OFFERED, False, type=bool):
            return
        if not backend_problem(run_settings.backend_python()):
            return
        stored.setValue(settings.SETTINGS_SETUP_OFFERED, True)
        text = "needs its own Python environment (PyTorch) before it can remove clouds."
        bar: Any = self.iface.messageBar()
        message = QgsMessageBar.createMessage("Cloud Removal", text)
        button = QPushButton("Set up…")
        button.clicked.connect(self.open_setup)
        message.layout().addWidget(button)
        bar.pushWidget(message, MESSAGE_INFO, 0)

    def unload(self) -> None:
        """Remove the provider, panel and actions; stop the backend worker (plugin off or reloaded, QGIS closing)."""
        warm_worker.shutdown()
        application = QgsApplication.instance()
        if self._quit_connected and application is not None:
            application.aboutToQuit.disconnect(warm_worker.shutdown)
            self._quit_connected = False
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.iface is None:
            return
        if self.dock is not None:
            self.dock.teardown()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        for action in (self.action, self.setup_action):
            if action is not None:
                self.iface.removePluginMenu(MENU, action)
        if self.action is not None:
            self.iface.removeToolBarIcon(self.action)
        self.action = self.setup_action = None
        if self.setup_dialog is not None:
            self.setup_dialog.deleteLater()
            self.setup_dialog = None
