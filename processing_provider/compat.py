"""Enums spelled so they resolve on QGIS 3.22 and on QGIS >= 3.36 / 4 (scoped ``Qgis`` enums, Qt 6).

Everything the plugin needs from an enum that moved between versions is looked up here once, so the rest of the
code never spells an enum that exists in only one of them.
"""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsContrastEnhancement,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
    QgsRasterMinMaxOrigin,
)

if hasattr(Qgis, "ProcessingParameterFlag"):  # QGIS >= 3.36
    FLAG_ADVANCED = Qgis.ProcessingParameterFlag.Advanced
    FLAG_OPTIONAL = Qgis.ProcessingParameterFlag.Optional
    INTEGER = Qgis.ProcessingNumberParameterType.Integer
    DOUBLE = Qgis.ProcessingNumberParameterType.Double
    TYPE_RASTER = Qgis.ProcessingSourceType.Raster
else:  # QGIS 3.22 - 3.34
    FLAG_ADVANCED = QgsProcessingParameterDefinition.Flag.FlagAdvanced
    FLAG_OPTIONAL = QgsProcessingParameterDefinition.Flag.FlagOptional
    INTEGER = QgsProcessingParameterNumber.Type.Integer
    DOUBLE = QgsProcessingParameterNumber.Type.Double
    TYPE_RASTER = QgsProcessing.SourceType.TypeRaster

STRETCH_MIN_MAX = QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum
if hasattr(Qgis, "RasterRangeLimit"):  # QGIS >= 3.42
    LIMITS_CUMULATIVE_CUT = Qgis.RasterRangeLimit.CumulativeCut
else:
    LIMITS_CUMULATIVE_CUT = QgsRasterMinMaxOrigin.Limits.CumulativeCut

MESSAGE_INFO = Qgis.MessageLevel.Info
BYTE = Qgis.DataType.Byte
