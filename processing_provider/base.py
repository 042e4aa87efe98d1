"""The parameters every cloud-removal algorithm shares, and the step that turns them into a backend job.

A method says what differs with class attributes: its backend name, whether Sentinel-1 is required, optional or
absent (``SAR_INPUT``), how many cloudy dates it takes (``MAX_DATES``: above 1 the optical input is a list of
layers), its default model and NFE. The defaults of the shared settings come from the dock's stored choices; their
bounds from the backend's table of run settings (``backend/protocol.py``), so the toolbox, the panel and the backend
accept the same values. A run is handed to the backend as a job (the keys of the backend's job), never as flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QIcon

from ..backend.protocol import RUN_SETTINGS
from . import settings
from .backend_process import backend_problem, run_job
from .compat import TYPE_RASTER
from .inputs import ICONS, model_argument, raster_file
from .parameters import DEVICES, RUNTIMES, advanced, choice_parameter, number_parameter
from .styling import style_on_load


class CloudRemovalAlgorithm(QgsProcessingAlgorithm):
    """A cloud-removal method run by the backend; subclasses name the method and describe it.

    Subclasses set ``BACKEND_ALGORITHM`` (the name after ``python -m backend run``), ``LABEL``, ``SAR_INPUT``,
    ``MAX_DATES``, ``DEFAULT_MODEL``, ``DEFAULT_NFE``, ``OPTICAL_DESCRIPTION`` and ``ICON``, and implement
    ``name``, ``displayName``, ``shortHelpString`` and ``createInstance``.
    """

    OPTICAL = "OPTICAL"
    SAR = "SAR"
    NFE = "NFE"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    RUNTIME = "RUNTIME"
    KEEP_CLEAR = "KEEP_CLEAR"
    CLOUD_THRESHOLD = "CLOUD_THRESHOLD"
    ADAPT = "ADAPT"
    COG = "COG"
    OUTPUT = "OUTPUT"
    CLOUD_MASK = "CLOUD_MASK"
    CHANGE = "CHANGE"
    CLOUD_FRACTION = "CLOUD_FRACTION"

    DEVICES = DEVICES
    RUNTIMES = RUNTIMES
    OUTPUT_DESCRIPTION = "Cloud-free image"

    BACKEND_ALGORITHM = ""
    LABEL = ""
    SAR_INPUT = "required"  # "required", "optional" or "none"
    MAX_DATES = 1
    DEFAULT_MODEL = ""
    DEFAULT_NFE: int | None = 1  # None: the model card's own
    OPTICAL_DESCRIPTION = "Cloudy Sentinel-2 image (all bands, as delivered)"
    OPTICAL_ROLE = "Sentinel-2"
    ICON = ""

    def group(self) -> str:
        """Return the toolbox group."""
        return "Remove clouds"

    def groupId(self) -> str:
        """Return the toolbox group's id."""
        return "removeclouds"

    def icon(self) -> QIcon:
        """Return the algorithm's icon."""
        return QIcon(self.svgIconPath())

    def svgIconPath(self) -> str:
        """Return the algorithm's icon file (the modeler draws it)."""
        return str(ICONS / self.ICON)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the inputs, the method's settings and the outputs; defaults come from the dock's choices."""
        choices = settings.load_choices()
        if self.MAX_DATES > 1:
            dates = QgsProcessingParameterMultipleLayers(self.OPTICAL, self.OPTICAL_DESCRIPTION, TYPE_RASTER)
            dates.setMinimumNumberInputs(1)
            self.addParameter(dates)
        else:
            self.addParameter(QgsProcessingParameterRasterLayer(self.OPTICAL, self.OPTICAL_DESCRIPTION))
        if self.SAR_INPUT != "none":
            optional = self.SAR_INPUT == "optional"
            description = "Sentinel-1 image (VV, VH in dB)" + (" — optional" if optional else "")
            self.addParameter(QgsProcessingParameterRasterLayer(self.SAR, description, None, optional))
        nfe = settings.method_nfe(self.BACKEND_ALGORITHM, self.DEFAULT_NFE)
        description = "Network evaluations (NFE: fewer = smoother, more = sharper; empty = the model's)"
        self.addParameter(number_parameter(self.NFE, description, RUN_SETTINGS["nfe"], nfe, True))
        model = settings.method_model(self.BACKEND_ALGORITHM, self.DEFAULT_MODEL)
        self.addParameter(
            QgsProcessingParameterString(self.MODEL, "Model (a shipped name or a .safetensors file)", model)
        )
        self._add_advanced(choice_parameter(self.DEVICE, "Device", self.DEVICES, choices.device))
        self._add_advanced(choice_parameter(self.RUNTIME, "Runtime", self.RUNTIMES, choices.runtime))
        tile = RUN_SETTINGS["tile_size"]
        description = "Tile size in pixels (0: the model's own)"
        self._add_advanced(number_parameter(self.TILE_SIZE, description, tile, choices.tile_size, minimum=tile.unset))
        overlap = RUN_SETTINGS["overlap"]
        chosen_overlap = choices.overlap if choices.overlap != overlap.unset else None
        description = "Tile overlap in pixels (empty: a quarter of the tile)"
        self._add_advanced(number_parameter(self.OVERLAP, description, overlap, chosen_overlap, True))
        self._add_advanced(
            QgsProcessingParameterBoolean(
                self.KEEP_CLEAR, "Keep clear pixels (the model fills only the clouds)", choices.keep_clear
            )
        )
        threshold = RUN_SETTINGS["cloud_threshold"]
        description = "Cloud threshold (s2cloudless probability)"
        self._add_advanced(number_parameter(self.CLOUD_THRESHOLD, description, threshold, choices.cloud_threshold))
        adapt = RUN_SETTINGS["adapt"]
        description = "Learn from this scene first: fine-tuning steps (0 = off)"
        self._add_advanced(number_parameter(self.ADAPT, description, adapt, adapt.default))
        self._add_advanced(
            QgsProcessingParameterBoolean(self.COG, "Write a Cloud-Optimized GeoTIFF (with overviews)", False)
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.OUTPUT_DESCRIPTION))
        for key, description in ((self.CLOUD_MASK, "Cloud mask"), (self.CHANGE, "Change (where the model worked)")):
            self.addParameter(QgsProcessingParameterRasterDestination(key, description, None, True, False))
        self.addOutput(QgsProcessingOutputNumber(self.CLOUD_FRACTION, "Cloud fraction (0-1)"))

    def _add_advanced(self, parameter: QgsProcessingParameterDefinition) -> None:
        self.addParameter(advanced(parameter))

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        """Refuse to start when the backend is missing or there are too many dates, saying what to do."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        if self.MAX_DATES > 1:
            count = len(self.parameterAsLayerList(parameters, self.OPTICAL, context))
            if count > self.MAX_DATES:
                return False, f"{self.LABEL} takes 1 to {self.MAX_DATES} cloudy dates; {count} were given."
        tile = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        problem = RUN_SETTINGS["tile_size"].problem(tile) if tile else ""
        if problem:
            return False, f"{problem}; 0 uses the model's own."
        problem = backend_problem(settings.backend_python())
        return (False, problem) if problem else (True, "")

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """Run the method on the backend and return the written GeoTIFF (and extras, and the cloud fraction)."""
        output = Path(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        extras = {
            key: Path(destination)
            for key in (self.CLOUD_MASK, self.CHANGE)
            if (destination := self.parameterAsOutputLayer(parameters, key, context))
        }
        job = self.backend_job(parameters, context, output, extras.get(self.CLOUD_MASK), extras.get(self.CHANGE))
        stats = run_job(settings.backend_python(), "run", job, output, feedback, list(extras.values()))
        results: dict[str, Any] = {self.OUTPUT: str(output), self.CLOUD_MASK: None, self.CHANGE: None}
        written = stats.get("extra_outputs")
        written = written if isinstance(written, dict) else {}
        for kind, key in (("mask", self.CLOUD_MASK), ("change", self.CHANGE)):
            if key in extras:
                results[key] = self._extra_result(extras[key], written.get(kind), feedback)
        fraction = stats.get("cloud_fraction")  # the backend also says it in the log, in words
        results[self.CLOUD_FRACTION] = float(fraction) if isinstance(fraction, (int, float)) else None
        name = f"{self._optical_name(parameters, context)} cloud-free ({self.LABEL})"
        style_on_load(context, str(output), "true_colour", name, self.OUTPUT_DESCRIPTION)
        style_on_load(context, results[self.CLOUD_MASK] or "", "cloud_mask")
        style_on_load(context, results[self.CHANGE] or "", "change")
        return results

    def backend_job(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        output: Path,
        cloud_mask: Path | None = None,
        change: Path | None = None,
    ) -> dict[str, Any]:
        """Return the backend job (the keys of the backend's job, JSON-ready) for these parameters.

        Args:
            parameters: the algorithm's parameter values.
            context: the Processing context the layers are resolved in.
            output: the GeoTIFF to write.
            cloud_mask: where to write the input's cloud mask, or None.
            change: where to write the per-pixel change, or None.
        """
        for path in (output, cloud_mask, change):
            if path is not None and path.suffix.lower() not in (".tif", ".tiff"):
                raise QgsProcessingException(f"The output must be a GeoTIFF file (.tif), not {path.name}.")
        optical = self._optical_files(parameters, context)
        inputs = list(optical)
        job: dict[str, Any] = {
            "algorithm": self.BACKEND_ALGORITHM,
            "optical": optical if self.MAX_DATES > 1 else optical[0],
        }
        if self.SAR_INPUT != "none":
            sar = self.parameterAsRasterLayer(parameters, self.SAR, context)
            if sar is not None or self.SAR_INPUT == "required":
                job["sar"] = raster_file(sar, "Sentinel-1")
                inputs.append(job["sar"])
        for source in inputs:
            if os.path.abspath(source) == os.path.abspath(output):
                raise QgsProcessingException(f"The output would overwrite the input {source}; choose another file.")
        job["nfe"] = self._optional_int(parameters, self.NFE, context)
        job["model"] = model_argument(self.parameterAsString(parameters, self.MODEL, context))
        job["device"] = self.DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)][0]
        job["tile_size"] = self.parameterAsInt(parameters, self.TILE_SIZE, context) or None  # 0: the model's own
        job["overlap"] = self._optional_int(parameters, self.OVERLAP, context)
        job["runtime"] = self.RUNTIMES[self.parameterAsEnum(parameters, self.RUNTIME, context)][0]
        job["keep_clear"] = self.parameterAsBoolean(parameters, self.KEEP_CLEAR, context)
        if job["keep_clear"] or cloud_mask is not None:  # otherwise the backend's own (as scene adaptation uses)
            job["cloud_threshold"] = self.parameterAsDouble(parameters, self.CLOUD_THRESHOLD, context)
        job["adapt"] = self.parameterAsInt(parameters, self.ADAPT, context)
        job["cog"] = self.parameterAsBoolean(parameters, self.COG, context)
        job["output"] = str(output)
        job["cloud_mask_output"] = str(cloud_mask) if cloud_mask is not None else None
        job["change_output"] = str(change) if change is not None else None
        return {key: value for key, value in job.items() if value is not None}

    @staticmethod
    def _extra_result(wanted: Path, written: Any, feedback: QgsProcessingFeedback) -> str | None:
        """The extra output's path if the backend wrote it where the job said, else None and a warning."""
        if written is not None and Path(str(written)) == wanted and wanted.is_file():
            return str(wanted)
        feedback.pushWarning(f"The backend wrote no {wanted.name}; update the backend to get it.")
        return None

    def _optical_files(self, parameters: dict[str, Any], context: QgsProcessingContext) -> list[str]:
        if self.MAX_DATES == 1:
            return [raster_file(self.parameterAsRasterLayer(parameters, self.OPTICAL, context), self.OPTICAL_ROLE)]
        layers = self.parameterAsLayerList(parameters, self.OPTICAL, context)
        if not 1 <= len(layers) <= self.MAX_DATES:
            raise QgsProcessingException(
                f"{self.LABEL} takes 1 to {self.MAX_DATES} cloudy dates of the same place; {len(layers)} were given."
            )
        return [
            raster_file(layer if isinstance(layer, QgsRasterLayer) else None, f"{self.OPTICAL_ROLE} date {number}")
            for number, layer in enumerate(layers, start=1)
        ]

    def _optical_name(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        if self.MAX_DATES == 1:
            layer = self.parameterAsRasterLayer(parameters, self.OPTICAL, context)
        else:
            layers = self.parameterAsLayerList(parameters, self.OPTICAL, context)
            layer = layers[0] if layers else None
        return layer.name() if layer is not None else self.OPTICAL_ROLE

    def _optional_int(self, parameters: dict[str, Any], key: str, context: QgsProcessingContext) -> int | None:
        """Return an optional integer parameter, or None when it is empty and has no default."""
        if parameters.get(key) in (None, "") and self.parameterDefinition(key).defaultValue() in (None, ""):
            return None
        return self.parameterAsInt(parameters, key, context)
