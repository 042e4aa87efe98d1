"""Cloud mask: s2cloudless cloud probability and a cloud mask of a Sentinel-2 Level-1C image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtGui import QIcon

from ..backend.protocol import CLOUD_MASK_SETTINGS
from . import settings
from .backend_process import backend_problem, run_job
from .compat import FLAG_ADVANCED
from .inputs import ICONS, raster_file
from .parameters import number_parameter
from .styling import style_on_load

_HELP_HTML = """<p>Finds the clouds in a Sentinel-2 Level-1C image with s2cloudless, a per-pixel classifier (gradient
boosting on ten bands), and writes two rasters on the image's grid: the cloud <b>probability</b> (0 to 1, float32)
and the cloud <b>mask</b> (1 cloud, 0 clear, 255 no data), shown as a see-through magenta overlay. The log and the
CLOUD_FRACTION output give the share of valid pixels under cloud.</p>
<h3>Inputs</h3><ul>
<li><b>Sentinel-2 image</b>: Level-1C, 13 bands B1 to B12 (B8A after B8), digital numbers (reflectance x 10000).
s2cloudless was trained on top-of-atmosphere reflectance; Level-2A (12 bands) is read too, but is less reliable.</li>
</ul><h3>Settings</h3><ul>
<li><b>Threshold</b>: the probability above which a pixel is cloud; 0.4 is s2cloudless's default. Lower it to catch
thin clouds (and more bright ground), raise it to keep only thick clouds.</li>
<li><b>Dilation</b>: pixels added around every cloud, to cover the cloud edges the classifier misses.</li>
<li>Advanced: the smoothing radius of the probability before thresholding.</li>
</ul>
<p>Runs in the plugin's backend environment (see the <i>Cloud removal</i> panel).</p>
<p>Please cite: Sentinel Hub's cloud detector for Sentinel-2 imagery, s2cloudless (Zupanc et al., Sinergise, 2017;
github.com/sentinel-hub/sentinel2-cloud-detector).</p>
"""
HELP = " ".join(_HELP_HTML.split())


class CloudMaskAlgorithm(QgsProcessingAlgorithm):
    """s2cloudless probability and mask, run as ``python -m backend cloudmask --job FILE``."""

    OPTICAL = "OPTICAL"
    THRESHOLD = "THRESHOLD"
    DILATION = "DILATION"
    AVERAGE_OVER = "AVERAGE_OVER"
    PROBABILITY = "PROBABILITY"
    MASK = "MASK"
    CLOUD_FRACTION = "CLOUD_FRACTION"

    def name(self) -> str:
        """Return the algorithm id within the provider (``cloudremoval:cloudmask``)."""
        return "cloudmask"

    def displayName(self) -> str:
        """Return the name shown in the toolbox."""
        return "Cloud mask (s2cloudless, Sentinel-2 L1C)"

    def group(self) -> str:
        """Return the toolbox group."""
        return "Cloud masks"

    def groupId(self) -> str:
        """Return the toolbox group's id."""
        return "cloudmasks"

    def shortHelpString(self) -> str:
        """Return the help shown beside the parameters."""
        return HELP

    def tags(self) -> list[str]:
        """Return search words for the toolbox."""
        return ["cloud", "mask", "detection", "s2cloudless", "sentinel-2", "probability"]

    def icon(self) -> QIcon:
        """Return the algorithm's icon."""
        return QIcon(self.svgIconPath())

    def svgIconPath(self) -> str:
        """Return the algorithm's icon file."""
        return str(ICONS / "cloudmask.svg")

    def createInstance(self) -> CloudMaskAlgorithm:
        """Return a new instance."""
        return CloudMaskAlgorithm()

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the input, the thresholds and the two rasters."""
        choices = settings.load_choices()
        self.addParameter(QgsProcessingParameterRasterLayer(self.OPTICAL, "Sentinel-2 Level-1C image (13 bands)"))
        table = CLOUD_MASK_SETTINGS
        threshold = number_parameter(
            self.THRESHOLD, "Cloud probability threshold", table["threshold"], choices.cloud_threshold
        )
        self.addParameter(threshold)
        dilation = table["dilation"]
        self.addParameter(number_parameter(self.DILATION, "Dilation (pixels)", dilation, dilation.default))
        radius = table["average_over"]
        average = number_parameter(
            self.AVERAGE_OVER, "Smoothing radius of the probability (pixels)", radius, radius.default
        )
        average.setFlags(average.flags() | FLAG_ADVANCED)
        self.addParameter(average)
        self.addParameter(QgsProcessingParameterRasterDestination(self.PROBABILITY, "Cloud probability", None, True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.MASK, "Cloud mask"))
        self.addOutput(QgsProcessingOutputNumber(self.CLOUD_FRACTION, "Cloud fraction (0-1)"))

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        """Refuse to start when the backend is missing, saying how to set it up."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = backend_problem(settings.backend_python())
        return (False, problem) if problem else (True, "")

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """Run s2cloudless on the backend and return the rasters and the cloud fraction."""
        optical = raster_file(self.parameterAsRasterLayer(parameters, self.OPTICAL, context), "Sentinel-2")
        outputs = {
            key: Path(path)
            for key in (self.MASK, self.PROBABILITY)
            if (path := self.parameterAsOutputLayer(parameters, key, context))
        }
        if not outputs:
            raise QgsProcessingException("Choose where to write the cloud mask, the probability, or both.")
        for path in outputs.values():
            if path.suffix.lower() not in (".tif", ".tiff"):
                raise QgsProcessingException(f"The outputs must be GeoTIFF files (.tif), not {path.name}.")
        job: dict[str, Any] = {"optical": optical}
        if self.PROBABILITY in outputs:
            job["probability"] = str(outputs[self.PROBABILITY])
        if self.MASK in outputs:
            job["mask"] = str(outputs[self.MASK])
        job["threshold"] = self.parameterAsDouble(parameters, self.THRESHOLD, context)
        job["dilation"] = self.parameterAsInt(parameters, self.DILATION, context)
        job["average_over"] = self.parameterAsInt(parameters, self.AVERAGE_OVER, context)
        main, *others = outputs.values()
        stats = run_job(settings.backend_python(), "cloudmask", job, main, feedback, others)
        fraction = stats.get("cloud_fraction")
        fraction = float(fraction) if isinstance(fraction, (int, float)) else None  # also in the backend's log
        style_on_load(context, str(outputs.get(self.MASK, "")), "cloud_mask")
        style_on_load(context, str(outputs.get(self.PROBABILITY, "")), "probability")
        return {
            self.MASK: str(outputs[self.MASK]) if self.MASK in outputs else None,
            self.PROBABILITY: str(outputs[self.PROBABILITY]) if self.PROBABILITY in outputs else None,
            self.CLOUD_FRACTION: fraction,
        }
