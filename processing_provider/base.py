"""The parameters every cloud-removal algorithm shares, and the step that turns them into a backend job."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProviderRegistry,
    QgsRasterLayer,
)

from ..plugin.settings import backend_python
from .compat import FLAG_ADVANCED, INTEGER
from .runner import run_backend


class CloudRemovalAlgorithm(QgsProcessingAlgorithm):
    """A cloud-removal method run by the backend; subclasses name the method and describe it.

    Subclasses set ``BACKEND_ALGORITHM`` (the name after ``python -m backend run``), ``USES_SAR`` and
    ``DEFAULT_MODEL``, and implement ``name``, ``displayName``, ``shortHelpString`` and ``createInstance``.
    """

    OPTICAL = "OPTICAL"
    SAR = "SAR"
    NFE = "NFE"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    OUTPUT = "OUTPUT"

    DEVICES = (("auto", "Automatic (GPU when available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))
    MAX_NFE = 50

    BACKEND_ALGORITHM = ""
    USES_SAR = True
    DEFAULT_MODEL = ""

    def group(self) -> str:
        """Return the toolbox group."""
        return "Remove clouds"

    def groupId(self) -> str:
        """Return the toolbox group's id."""
        return "removeclouds"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the inputs, the method's settings and the output."""
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.OPTICAL, "Cloudy Sentinel-2 image (all bands, as delivered)")
        )
        if self.USES_SAR:
            self.addParameter(QgsProcessingParameterRasterLayer(self.SAR, "Sentinel-1 image (VV, VH in dB)"))
        self.addParameter(
            QgsProcessingParameterNumber(
                self.NFE, "Network evaluations (NFE: more is slower, finer)", INTEGER, 1, False, 1, self.MAX_NFE
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.MODEL, "Model (a shipped name or a .safetensors file)", self.DEFAULT_MODEL
            )
        )
        self._add_advanced(
            QgsProcessingParameterEnum(self.DEVICE, "Device", [label for _, label in self.DEVICES], False, 0)
        )
        self._add_advanced(
            QgsProcessingParameterNumber(
                self.TILE_SIZE, "Tile size in pixels (0: the model's own)", INTEGER, 0, False, 0, 8192
            )
        )
        self._add_advanced(
            QgsProcessingParameterNumber(
                self.OVERLAP, "Tile overlap in pixels (empty: a quarter of the tile)", INTEGER, None, True, 0, 4096
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Cloud-free image"))

    def _add_advanced(self, parameter: QgsProcessingParameterDefinition) -> None:
        parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
        self.addParameter(parameter)

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """Run the method on the backend and return the written GeoTIFF."""
        output = Path(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        arguments = self.backend_arguments(parameters, context, output)
        run_backend(backend_python(), arguments, output, feedback)
        return {self.OUTPUT: str(output)}

    def backend_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext, output: Path) -> list[str]:
        """Return the backend command line (after ``python -m backend``) for these parameters."""
        if output.suffix.lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(f"The output must be a GeoTIFF file (.tif), not {output.name}.")
        layers = {"--optical": (self.OPTICAL, "Sentinel-2")}
        if self.USES_SAR:
            layers["--sar"] = (self.SAR, "Sentinel-1")
        inputs = {
            flag: raster_file(self.parameterAsRasterLayer(parameters, key, context), role)
            for flag, (key, role) in layers.items()
        }
        for path in inputs.values():
            if os.path.abspath(path) == os.path.abspath(output):
                raise QgsProcessingException(f"The output would overwrite the input {path}; choose another file.")

        arguments = ["run", self.BACKEND_ALGORITHM]
        for flag, path in inputs.items():
            arguments += [flag, path]
        arguments += ["--nfe", str(self.parameterAsInt(parameters, self.NFE, context))]
        arguments += ["--model", model_argument(self.parameterAsString(parameters, self.MODEL, context))]
        arguments += ["--device", self.DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)][0]]
        tile_size = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        if tile_size > 0:
            arguments += ["--tile-size", str(tile_size)]
        if parameters.get(self.OVERLAP) not in (None, ""):
            arguments += ["--overlap", str(self.parameterAsInt(parameters, self.OVERLAP, context))]
        return [*arguments, "--output", str(output), "--events"]


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
