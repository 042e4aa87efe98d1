"""The "Cloud removal" Processing provider: one algorithm per method, the cloud mask, and many scenes at once."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .cloudmask import CloudMaskAlgorithm
from .dbcr import DbcrAlgorithm
from .de import DeAlgorithm
from .diffcr import DiffcrAlgorithm
from .inputs import ICONS
from .many_scenes import ManyScenesAlgorithm

ICON = ICONS / "cloud_removal.svg"


class CloudRemovalProvider(QgsProcessingProvider):
    """Lists the cloud-removal algorithms under the id ``cloudremoval``."""

    ID = "cloudremoval"

    def id(self) -> str:
        """Return the provider id, the prefix of every algorithm id (``cloudremoval:dbcr``)."""
        return self.ID

    def name(self) -> str:
        """Return the name shown in the Processing toolbox."""
        return "Cloud removal"

    def longName(self) -> str:
        """Return the name shown in the provider list of the settings."""
        return "Cloud removal (DB-CR, DiffCR, DE)"

    def icon(self) -> QIcon:
        """Return the provider icon."""
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        """Return the provider icon's file, used by the modeler."""
        return str(ICON)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        """The backend writes GeoTIFF only."""
        return ["tif"]

    def loadAlgorithms(self) -> None:
        """Add one instance of each algorithm.

        The algorithms import nothing heavy and load even when the backend is missing: they say so, with the fix,
        when run (``checkParameterValues``), so the toolbox never loses them.
        """
        for algorithm in (
            DbcrAlgorithm(), DiffcrAlgorithm(), DeAlgorithm(), CloudMaskAlgorithm(), ManyScenesAlgorithm(),
        ):  # fmt: skip
            self.addAlgorithm(algorithm)
