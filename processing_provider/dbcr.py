"""DB-CR: the diffusion bridge that fuses Sentinel-1 radar into a cloudy Sentinel-2 image."""

from __future__ import annotations

from .base import CloudRemovalAlgorithm
from .help import ADVANCED, KEEP_CLEAR, MODEL, NFE_TRADE_OFF, build_help

HELP = build_help(
    summary="Reconstructs the ground under the clouds of a Sentinel-2 image, using a Sentinel-1 radar image of the "
    "same place (radar sees through clouds). Cloud shadows are not masked (s2cloudless finds clouds only) and stay "
    "as they are. The result is a GeoTIFF on the Sentinel-2 image's grid "
    "(CRS, pixel size, extent), with the same bands, data type, scale and nodata as the input, shown in true colour.",
    inputs=[
        "<li><b>Cloudy Sentinel-2 image</b>: the bands the model was trained on, in their usual order; for the "
        "shipped <i>dbcr-lite</i> model, the 13 Level-1C bands B1 to B12 (B8A after B8) as digital numbers "
        "(reflectance x 10000). Level-2A (12 bands, no B10) is accepted too.</li>",
        "<li><b>Sentinel-1 image</b>: two bands, VV then VH, backscatter in dB (GRD, terrain corrected). It is "
        "resampled onto the Sentinel-2 grid, so it may have another CRS or pixel size, but must cover the Sentinel-2 "
        "image and be acquired close in time.</li>",
    ],
    settings=[
        NFE_TRADE_OFF.replace(
            "</li>",
            " For DB-CR, 1 step already gives a usable image (the bridge starts from the cloudy image, not "
            "from noise); 3 to 10 add detail.</li>",
        ),
        MODEL,
        KEEP_CLEAR,
        ADVANCED,
    ],
    citation="Hu et al., “Multimodal Diffusion Bridge with Attention-Based SAR Fusion for Satellite Image Cloud "
    "Removal”, IEEE Transactions on Geoscience and Remote Sensing, 2025 (arXiv:2504.03607).",
)


class DbcrAlgorithm(CloudRemovalAlgorithm):
    """DB-CR (Sentinel-1 + Sentinel-2), run as ``python -m backend run dbcr``."""

    BACKEND_ALGORITHM = "dbcr"
    LABEL = "DB-CR"
    SAR_INPUT = "required"
    DEFAULT_MODEL = "dbcr-lite"
    DEFAULT_NFE = 1
    ICON = "dbcr.svg"

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
