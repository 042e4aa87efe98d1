"""Processing enums spelled so they resolve on QGIS 3.22 and on QGIS >= 3.36 / 4 (scoped ``Qgis`` enums)."""

from __future__ import annotations

from qgis.core import Qgis, QgsProcessingParameterDefinition, QgsProcessingParameterNumber

if hasattr(Qgis, "ProcessingParameterFlag"):  # QGIS >= 3.36
    FLAG_ADVANCED = Qgis.ProcessingParameterFlag.Advanced
    INTEGER = Qgis.ProcessingNumberParameterType.Integer
else:  # QGIS 3.22 - 3.34
    FLAG_ADVANCED = QgsProcessingParameterDefinition.Flag.FlagAdvanced
    INTEGER = QgsProcessingParameterNumber.Type.Integer
