"""The provider and the DB-CR algorithm as QGIS sees them: ids, parameters, help, qgis_process listing."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsApplication,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)


def test_provider_lists_dbcr(provider: Any) -> None:
    assert provider.id() == "cloudremoval"
    assert provider.name() == "Cloud removal"
    assert not provider.icon().isNull()
    assert [algorithm.id() for algorithm in provider.algorithms()] == ["cloudremoval:dbcr"]


def test_dbcr_parameters(provider: Any) -> None:
    from cloud_removal.processing_provider.compat import FLAG_ADVANCED

    algorithm = QgsApplication.processingRegistry().algorithmById("cloudremoval:dbcr")
    assert algorithm.displayName() == "DB-CR (Sentinel-1 + Sentinel-2)"
    assert "arXiv:2504.03607" in algorithm.shortHelpString()
    expected = {
        "OPTICAL": QgsProcessingParameterRasterLayer,
        "SAR": QgsProcessingParameterRasterLayer,
        "NFE": QgsProcessingParameterNumber,
        "MODEL": QgsProcessingParameterString,
        "DEVICE": QgsProcessingParameterEnum,
        "TILE_SIZE": QgsProcessingParameterNumber,
        "OVERLAP": QgsProcessingParameterNumber,
        "OUTPUT": QgsProcessingParameterRasterDestination,
    }
    parameters = {definition.name(): definition for definition in algorithm.parameterDefinitions()}
    assert {name: type(definition) for name, definition in parameters.items()} == expected
    nfe = parameters["NFE"]
    assert (nfe.defaultValue(), nfe.minimum(), nfe.maximum()) == (1, 1, 50)
    assert parameters["MODEL"].defaultValue() == "dbcr-lite"
    assert parameters["OVERLAP"].flags() & parameters["OVERLAP"].FlagOptional  # empty: the backend's quarter tile
    assert parameters["DEVICE"].options() == ["Automatic (GPU when available)", "CPU", "GPU (CUDA)"]
    advanced = {name for name, definition in parameters.items() if definition.flags() & FLAG_ADVANCED}
    assert advanced == {"DEVICE", "TILE_SIZE", "OVERLAP"}
    assert parameters["OUTPUT"].defaultFileExtension() == "tif"


def test_qgis_process_lists_the_provider_from_a_throwaway_profile(qgis_process: Any) -> None:
    listing = qgis_process("list")
    assert listing.returncode == 0, listing.text
    assert "cloudremoval:dbcr\tDB-CR (Sentinel-1 + Sentinel-2)" in listing.stdout
    help_text = qgis_process("help", "cloudremoval:dbcr")
    assert help_text.returncode == 0, help_text.text
    for name in ("OPTICAL", "SAR", "NFE", "MODEL", "DEVICE", "TILE_SIZE", "OVERLAP", "OUTPUT"):
        assert f"{name}: " in help_text.stdout
