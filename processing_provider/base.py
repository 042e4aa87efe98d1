"""The parameters every cloud-removal algorithm shares, and the step that turns them into a backend job.

A method says what differs with class attributes: its backend name, whether Sentinel-1 is required, optional or
absent (``SAR_INPUT``), how many cloudy dates it takes (``MAX_DATES``: above 1 the optical input is a list of
layers), its default model and NFE. The defaults of the shared settings come from the dock's stored choices.
"""

from __future__ import annotations

import os
import shutil
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
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QIcon

from ..plugin import settings
from .backend_process import backend_problem, run_backend
from .compat import DOUBLE, FLAG_ADVANCED, INTEGER, TYPE_RASTER
from .inputs import ICONS, model_argument, raster_file
from .styling import style_on_load

EXTRA_OUTPUT_SUFFIXES = {"mask": "_cloudmask", "change": "_change"}


def extra_output_path(output: Path, kind: str) -> Path:
    """Where the backend writes an extra output (``mask``, ``change``) of a run writing ``output``."""
    return output.with_name(output.stem + EXTRA_OUTPUT_SUFFIXES[kind] + ".tif")


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
    OUTPUT = "OUTPUT"
    CLOUD_MASK = "CLOUD_MASK"
    CHANGE = "CHANGE"
    CLOUD_FRACTION = "CLOUD_FRACTION"

    DEVICES = (("auto", "Automatic (GPU when available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))
    RUNTIMES = (("torch", "PyTorch"), ("onnxruntime", "ONNX Runtime"))
    MAX_NFE = 50
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
        self.addParameter(
            QgsProcessingParameterNumber(
                self.NFE,
                "Network evaluations (NFE: fewer = smoother, more = sharper; empty = the model's)",
                INTEGER,
                nfe,
                True,
                1,
                self.MAX_NFE,
            )
        )
        model = settings.method_model(self.BACKEND_ALGORITHM, self.DEFAULT_MODEL)
        self.addParameter(
            QgsProcessingParameterString(self.MODEL, "Model (a shipped name or a .safetensors file)", model)
        )
        self._add_advanced(
            QgsProcessingParameterEnum(
                self.DEVICE, "Device", [label for _, label in self.DEVICES], False, _index(self.DEVICES, choices.device)
            )
        )
        self._add_advanced(
            QgsProcessingParameterEnum(
                self.RUNTIME,
                "Runtime",
                [label for _, label in self.RUNTIMES],
                False,
                _index(self.RUNTIMES, choices.runtime),
            )
        )
        self._add_advanced(
            QgsProcessingParameterNumber(
                self.TILE_SIZE, "Tile size in pixels (0: the model's own)", INTEGER, choices.tile_size, False, 0, 8192
            )
        )
        overlap = choices.overlap if choices.overlap >= 0 else None
        self._add_advanced(
            QgsProcessingParameterNumber(
                self.OVERLAP, "Tile overlap in pixels (empty: a quarter of the tile)", INTEGER, overlap, True, 0, 4096
            )
        )
        self._add_advanced(
            QgsProcessingParameterBoolean(
                self.KEEP_CLEAR, "Keep clear pixels (the model fills only the clouds)", choices.keep_clear
            )
        )
        self._add_advanced(
            QgsProcessingParameterNumber(
                self.CLOUD_THRESHOLD,
                "Cloud threshold (s2cloudless probability)",
                DOUBLE,
                choices.cloud_threshold,
                False,
                0.01,
                0.99,
            )
        )
        self._add_advanced(
            QgsProcessingParameterNumber(
                self.ADAPT, "Learn from this scene first: fine-tuning steps (0 = off)", INTEGER, 0, False, 0, 5000
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.OUTPUT_DESCRIPTION))
        for key, description in ((self.CLOUD_MASK, "Cloud mask"), (self.CHANGE, "Change (where the model worked)")):
            self.addParameter(QgsProcessingParameterRasterDestination(key, description, None, True, False))
        self.addOutput(QgsProcessingOutputNumber(self.CLOUD_FRACTION, "Cloud fraction (0-1)"))

    def _add_advanced(self, parameter: QgsProcessingParameterDefinition) -> None:
        parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
        self.addParameter(parameter)

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        """Refuse to start when the backend is missing or there are too many dates, saying what to do."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        if self.MAX_DATES > 1:
            count = len(self.parameterAsLayerList(parameters, self.OPTICAL, context))
            if count > self.MAX_DATES:
                return False, f"{self.LABEL} takes 1 to {self.MAX_DATES} cloudy dates; {count} were given."
        problem = backend_problem(settings.backend_python())
        return (False, problem) if problem else (True, "")

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """Run the method on the backend and return the written GeoTIFF (and extras, and the cloud fraction)."""
        output = Path(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        wanted = {
            kind: Path(destination)
            for kind, key in (("mask", self.CLOUD_MASK), ("change", self.CHANGE))
            if (destination := self.parameterAsOutputLayer(parameters, key, context))
        }
        arguments = self.backend_arguments(parameters, context, output, list(wanted))
        written = {kind: extra_output_path(output, kind) for kind in wanted}
        stats = run_backend(
            settings.backend_python(), arguments, output, feedback, [*written.values(), *wanted.values()]
        )
        results: dict[str, Any] = {self.OUTPUT: str(output), self.CLOUD_MASK: None, self.CHANGE: None}
        for kind, key in (("mask", self.CLOUD_MASK), ("change", self.CHANGE)):
            if kind in wanted:
                results[key] = _move_extra(written[kind], wanted[kind], feedback)
        fraction = stats.get("cloud_fraction")  # the backend also says it in the log, in words
        results[self.CLOUD_FRACTION] = float(fraction) if isinstance(fraction, (int, float)) else None
        name = f"{self._optical_name(parameters, context)} cloud-free ({self.LABEL})"
        style_on_load(context, str(output), "true_colour", name, self.OUTPUT_DESCRIPTION)
        style_on_load(context, results[self.CLOUD_MASK] or "", "cloud_mask")
        style_on_load(context, results[self.CHANGE] or "", "change")
        return results

    def backend_arguments(
        self, parameters: dict[str, Any], context: QgsProcessingContext, output: Path, extras: list[str] | None = None
    ) -> list[str]:
        """Return the backend command line (after ``python -m backend``) for these parameters.

        Args:
            parameters: the algorithm's parameter values.
            context: the Processing context the layers are resolved in.
            output: the GeoTIFF to write.
            extras: extra outputs to ask for (``mask``, ``change``).
        """
        if output.suffix.lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(f"The output must be a GeoTIFF file (.tif), not {output.name}.")
        inputs = [("--optical", path) for path in self._optical_files(parameters, context)]
        if self.SAR_INPUT != "none":
            sar = self.parameterAsRasterLayer(parameters, self.SAR, context)
            if sar is not None or self.SAR_INPUT == "required":
                inputs.append(("--sar", raster_file(sar, "Sentinel-1")))
        for _, path in inputs:
            if os.path.abspath(path) == os.path.abspath(output):
                raise QgsProcessingException(f"The output would overwrite the input {path}; choose another file.")

        arguments = ["run", self.BACKEND_ALGORITHM]
        for flag, path in inputs:
            arguments += [flag, path]
        nfe = self._optional_int(parameters, self.NFE, context)
        if nfe is not None:
            arguments += ["--nfe", str(nfe)]
        arguments += ["--model", model_argument(self.parameterAsString(parameters, self.MODEL, context))]
        arguments += ["--device", self.DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)][0]]
        tile_size = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        if tile_size > 0:
            arguments += ["--tile-size", str(tile_size)]
        overlap = self._optional_int(parameters, self.OVERLAP, context)
        if overlap is not None:
            arguments += ["--overlap", str(overlap)]
        arguments += ["--runtime", self.RUNTIMES[self.parameterAsEnum(parameters, self.RUNTIME, context)][0]]
        keep_clear = self.parameterAsBoolean(parameters, self.KEEP_CLEAR, context)
        if keep_clear:
            arguments.append("--keep-clear")
        if keep_clear or "mask" in (extras or []):
            threshold = self.parameterAsDouble(parameters, self.CLOUD_THRESHOLD, context)
            arguments += ["--cloud-threshold", f"{threshold:g}"]
        if extras:
            arguments += ["--extra-outputs", ",".join(extras)]
        adapt = self.parameterAsInt(parameters, self.ADAPT, context)
        if adapt > 0:
            arguments += ["--adapt", str(adapt)]
        return [*arguments, "--output", str(output), "--events"]

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


def _index(options: tuple[tuple[str, str], ...], value: str) -> int:
    return next((index for index, (key, _) in enumerate(options) if key == value), 0)


def _move_extra(written: Path, wanted: Path, feedback: QgsProcessingFeedback) -> str | None:
    """Move an extra output from where the backend wrote it to where the user asked for it."""
    if not written.is_file():
        feedback.pushWarning(
            f"The backend wrote no {written.stem.rsplit('_', 1)[-1]} output; update the backend to get it."
        )
        return None
    if written != wanted:
        shutil.move(str(written), str(wanted))
    return str(wanted)
