"""Inputs as the backend needs them: layers as files on disk, models as names or absolute paths."""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsProcessingException, QgsProviderRegistry, QgsRasterLayer

ICONS = Path(__file__).absolute().parent / "icons"


def raster_file(layer: QgsRasterLayer | None, role: str) -> str:
    """Return the file behind a raster layer, or explain why the backend cannot read it.

    Args:
        layer: the layer chosen for an input.
        role: what the input is, for the message (``Sentinel-2``, ``Sentinel-1``).
    """
    if layer is None or not layer.isValid():
        raise QgsProcessingException(
            f"The {role} layer could not be opened; check that its file exists and is a raster."
        )
    if layer.providerType() == "gdal":
        parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
        path = str(parts.get("path") or "")
        if path and os.path.isfile(path) and not parts.get("layerName"):
            return path
    raise QgsProcessingException(
        f"The {role} layer '{layer.name()}' is not a single raster file on disk (it comes from "
        f"'{layer.providerType()}'). Save it as a GeoTIFF first (right-click the layer › Export › Save As…) "
        "and choose that file."
    )


def model_argument(model: str) -> str:
    """Return a shipped model name as given, and a weights file as an absolute path (the backend runs elsewhere)."""
    model = model.strip()
    if not model:
        raise QgsProcessingException("Name a model: a shipped one such as dbcr-lite, or a .safetensors weights file.")
    looks_like_file = model.endswith(".safetensors") or os.sep in model or "/" in model
    if not looks_like_file:
        return model
    path = Path(model).expanduser()
    if not path.is_file():
        raise QgsProcessingException(f"The model file {model} does not exist.")
    return str(path.absolute())
