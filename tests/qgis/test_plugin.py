"""The plugin's face to QGIS: metadata, classFactory, provider registration, and what it must not import."""

from __future__ import annotations

import configparser
import subprocess
import sys
from typing import Any

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtWidgets import QPushButton
from qgis_support import REPO


def test_metadata_declares_a_processing_plugin_for_qgis_3_22() -> None:
    metadata = configparser.ConfigParser()
    metadata.read(REPO / "metadata.txt", encoding="utf-8")
    general = metadata["general"]
    assert general["name"] == "Cloud Removal (DB-CR, DiffCR, DE)"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert general["supportsQt6"] == "True"
    for key in ("version", "author", "email", "about", "description", "tracker", "repository", "changelog"):
        assert general[key].strip(), key
    assert (REPO / general["icon"]).is_file()


def test_initgui_registers_the_provider_and_unload_removes_it(
    qgis_processing: None, qgis_iface: Any, plugin_package: Any
) -> None:
    registry = QgsApplication.processingRegistry()
    plugin = plugin_package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert registry.providerById("cloudremoval") is not None
        assert registry.algorithmById("cloudremoval:dbcr") is not None
        plugin.initProcessing()  # a second registration (plugin reload) replaces the first
        assert [p.id() for p in registry.providers()].count("cloudremoval") == 1
    finally:
        plugin.unload()
    assert registry.providerById("cloudremoval") is None


def test_the_panel_has_a_menu_entry_a_toolbar_icon_and_goes_away_on_unload(
    qgis_processing: None, qgis_iface: Any, plugin_package: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    from cloud_removal.plugin import settings
    from cloud_removal.processing_provider import settings as run_settings

    monkeypatch.setenv(run_settings.ENV_BACKEND_PYTHON, str(tmp_path / "none" / "python"))
    QgsSettings().remove(settings.SETTINGS_SETUP_OFFERED)
    bar = qgis_iface.messageBar()
    bar.clearWidgets()
    plugin = plugin_package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert plugin.action is not None and plugin.action.isCheckable()
        assert plugin.action.objectName() == "CloudRemovalPanelAction"
        assert not plugin.action.icon().isNull()
        offer = bar.currentItem()
        assert offer is not None and "needs its own Python environment" in offer.text()
        assert [button.text() for button in offer.findChildren(QPushButton)] == ["Set up…"]
        plugin.action.setChecked(True)  # the toolbar icon
        assert plugin.dock is not None and plugin.dock.objectName() == "CloudRemovalDock"
        assert "Backend missing" in plugin.dock.status.text()
        second = plugin_package.classFactory(qgis_iface)
        bar.clearWidgets()
        second.offer_setup()  # offered once, not at every start
        assert bar.currentItem() is None
    finally:
        plugin.unload()
        QgsSettings().remove(settings.SETTINGS_SETUP_OFFERED)
    assert plugin.dock is None and plugin.action is None


def test_qgis_side_never_imports_the_heavy_backend(sandbox_env: dict[str, str]) -> None:
    probe = (
        "import sys; import cloud_removal.plugin.plugin, cloud_removal.processing_provider.provider, "
        "cloud_removal.plugin.dock, cloud_removal.plugin.setup_dialog; "
        "heavy = {'torch', 'rasterio', 'onnxruntime', 'safetensors'} & set(sys.modules); "
        "backend = {m for m in sys.modules if m.startswith('cloud_removal.backend.')}; "
        "print(sorted(heavy), sorted(backend))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env={**sandbox_env, "PYTHONPATH": sandbox_env["QGIS_PLUGINPATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.split("\n")[-2] == "[] ['cloud_removal.backend.protocol']"
