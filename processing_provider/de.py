"""DE: diffusion enhancement for cloud removal in high-resolution RGB (or RGB + NIR) images."""

from __future__ import annotations

from .base import CloudRemovalAlgorithm
from .help import ADVANCED, KEEP_CLEAR, MODEL, NFE_TRADE_OFF, build_help

HELP = build_help(
    summary="Reconstructs the ground under thin and thick clouds in a high-resolution optical image from the image "
    "alone (no radar, no other date): the clouds are found by a small detector learnt from RICE2's RGB pairs, "
    "filled from the clear ground around them, and a diffusion model refines that first estimate step by step. The "
    "result is a GeoTIFF on the input's grid with its bands, data type and scale, shown in true colour.",
    inputs=[
        "<li><b>Cloudy image</b>: RGB (3 bands) or RGB + NIR (4 bands), red first, 8-bit (0-255) or 16-bit; "
        "georeferenced or not. The value scale is taken from the model's card, or fitted to the image for 16-bit "
        "data fed to an 8-bit model.</li>",
    ],
    settings=[
        NFE_TRADE_OFF.replace("Leave it empty to use the model's own default.", "10 by default for DE."),
        MODEL,
        KEEP_CLEAR,
        ADVANCED,
    ],
    citation="Sui et al., “Diffusion Enhancement for Cloud Removal in Ultra-Resolution Remote Sensing Imagery”, "
    "IEEE Transactions on Geoscience and Remote Sensing, 2024 (arXiv:2401.15105).",
)


class DeAlgorithm(CloudRemovalAlgorithm):
    """DE (high-resolution RGB / RGB+NIR), run as ``python -m backend run de``."""

    BACKEND_ALGORITHM = "de"
    LABEL = "DE"
    SAR_INPUT = "none"
    DEFAULT_MODEL = "de-lite"
    DEFAULT_NFE = 10
    OPTICAL_DESCRIPTION = "Cloudy image (RGB or RGB + NIR, 8- or 16-bit)"
    OPTICAL_ROLE = "optical"
    ICON = "de.svg"

    def name(self) -> str:
        """Return the algorithm id within the provider (``cloudremoval:de``)."""
        return "de"

    def displayName(self) -> str:
        """Return the name shown in the toolbox."""
        return "DE (high-resolution RGB / RGB+NIR)"

    def shortHelpString(self) -> str:
        """Return the help shown beside the parameters."""
        return HELP

    def tags(self) -> list[str]:
        """Return search words for the toolbox."""
        return ["cloud", "removal", "rgb", "aerial", "high resolution", "diffusion", "de", "enhancement"]

    def createInstance(self) -> DeAlgorithm:
        """Return a new instance (Processing runs each execution on its own copy)."""
        return DeAlgorithm()
