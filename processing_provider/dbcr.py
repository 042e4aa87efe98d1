"""DB-CR: the diffusion bridge that fuses Sentinel-1 radar into a cloudy Sentinel-2 image."""

from __future__ import annotations

from .base import CloudRemovalAlgorithm

# QGIS turns every newline of a help string into a line break, so the HTML is joined into one line.
_HELP_HTML = """<p>Reconstructs the ground under clouds and cloud shadows in a Sentinel-2 image, using a Sentinel-1
radar image of the same place (radar sees through clouds). The result is a GeoTIFF on the Sentinel-2 image's grid
(CRS, pixel size, extent), with the same bands, data type, scale and nodata as the input.</p>

<h3>Inputs</h3>
<ul>
<li><b>Cloudy Sentinel-2 image</b>: the bands the model was trained on, in their usual order; for the shipped
<i>dbcr-lite</i> model, the 13 Level-1C bands B1 to B12 (B8A after B8) as digital numbers (reflectance x 10000).</li>
<li><b>Sentinel-1 image</b>: two bands, VV then VH, backscatter in dB (GRD, terrain corrected). It is resampled
onto the Sentinel-2 grid, so it may have another CRS or pixel size, but must cover the Sentinel-2 image and be
acquired close in time.</li>
</ul>

<h3>Settings</h3>
<ul>
<li><b>NFE</b> (network function evaluations): the number of bridge steps. 1 is fastest and already gives a
usable image; more steps (e.g. 3 to 10) add fine detail at a proportional cost in time.</li>
<li><b>Model</b>: a shipped model's name (<i>dbcr-lite</i>) or a <i>.safetensors</i> weights file; the model
knows its own bands, scaling and tile size.</li>
<li>Advanced: the device (GPU when available), the tile size (0 uses the model's) and the overlap in pixels
between tiles, blended so that no seams show.</li>
</ul>

<p>The work runs in the plugin's backend environment (run <code>make</code> in the plugin folder once to create
it). Cancel stops it and leaves no output file.</p>

<p>Method: Hu et al., "Multimodal Diffusion Bridge with Attention-Based SAR Fusion for Satellite Image Cloud
Removal", IEEE Transactions on Geoscience and Remote Sensing, 2025 (arXiv:2504.03607).</p>
"""
HELP = " ".join(_HELP_HTML.split())


class DbcrAlgorithm(CloudRemovalAlgorithm):
    """DB-CR (Sentinel-1 + Sentinel-2), run as ``python -m backend run dbcr``."""

    BACKEND_ALGORITHM = "dbcr"
    USES_SAR = True
    DEFAULT_MODEL = "dbcr-lite"

    def name(self) -> str:
        """Return the algorithm id within the provider (``cloudremoval:dbcr``)."""
        return "dbcr"

    def displayName(self) -> str:
        """Return the name shown in the toolbox."""
        return "DB-CR (Sentinel-1 + Sentinel-2)"

    def shortHelpString(self) -> str:
        """Return the help shown beside the parameters."""
        return HELP

    def tags(self) -> list[str]:
        """Return search words for the toolbox."""
        return ["cloud", "removal", "sentinel-2", "sentinel-1", "sar", "diffusion", "bridge", "dbcr", "db-cr"]

    def createInstance(self) -> DbcrAlgorithm:
        """Return a new instance (Processing runs each execution on its own copy)."""
        return DbcrAlgorithm()
