"""DiffCR: a conditional diffusion model over one to three cloudy Sentinel-2 dates of the same place."""

from __future__ import annotations

from .base import CloudRemovalAlgorithm
from .help import ADVANCED, KEEP_CLEAR, MODEL, NFE_TRADE_OFF, build_help

HELP = build_help(
    summary="Reconstructs the ground under clouds from one to three cloudy Sentinel-2 images of the same place taken "
    "on different dates: where the first date is cloudy, another may be clear. The shipped <i>diffcr-lite</i> needs "
    "no radar: it fills the first date's clouds from the other dates' clear pixels, matched to its brightness, and "
    "from the clear ground around them where every date is cloudy. The result is a GeoTIFF on the first date's grid "
    "with its bands, data type, scale and nodata, shown in true colour.",
    inputs=[
        "<li><b>Cloudy Sentinel-2 images</b>: 1 to 3 dates of the same place, in any order after the first; the "
        "<b>first</b> is the one cleaned and gives the output grid, the others (clear or cloudy, days to weeks apart, "
        "of any size or grid) are warped onto it. With one date its clouds are filled from the ground around them. "
        "Level-1C (13 bands, B1 to B12 with B8A) or Level-2A (12 bands), digital numbers (reflectance x 10000).</li>",
        "<li><b>Sentinel-1 image</b> (optional): VV then VH in dB, only for DiffCR models of your own trained with "
        "radar; the shipped <i>diffcr-lite</i> ignores it. The model's card says which.</li>",
    ],
    settings=[NFE_TRADE_OFF, MODEL, KEEP_CLEAR, ADVANCED],
    citation="Zou et al., “DiffCR: A Fast Conditional Diffusion Framework for Cloud Removal From Optical Satellite "
    "Images”, IEEE Transactions on Geoscience and Remote Sensing, 2024 (arXiv:2308.04417).",
)


class DiffcrAlgorithm(CloudRemovalAlgorithm):
    """DiffCR (Sentinel-2, multi-date), run as ``python -m backend run diffcr``."""

    BACKEND_ALGORITHM = "diffcr"
    LABEL = "DiffCR"
    SAR_INPUT = "optional"
    MAX_DATES = 3
    DEFAULT_MODEL = "diffcr-lite"
    DEFAULT_NFE = None  # the model card's
    OPTICAL_DESCRIPTION = "Cloudy Sentinel-2 images of one place (1 to 3 dates; the first is cleaned)"
    ICON = "diffcr.svg"

    def name(self) -> str:
        """Return the algorithm id within the provider (``cloudremoval:diffcr``)."""
        return "diffcr"

    def displayName(self) -> str:
        """Return the name shown in the toolbox."""
        return "DiffCR (Sentinel-2, multi-date)"

    def shortHelpString(self) -> str:
        """Return the help shown beside the parameters."""
        return HELP

    def tags(self) -> list[str]:
        """Return search words for the toolbox."""
        return ["cloud", "removal", "sentinel-2", "multi-temporal", "time series", "diffusion", "diffcr"]

    def createInstance(self) -> DiffcrAlgorithm:
        """Return a new instance (Processing runs each execution on its own copy)."""
        return DiffcrAlgorithm()
