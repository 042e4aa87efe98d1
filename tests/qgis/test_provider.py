"""The provider and its algorithms as QGIS sees them: ids, parameters, help, icons, qgis_process listing."""

from __future__ import annotations

from typing import Any

import pytest
from qgis.core import (
    QgsApplication,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

ALGORITHMS = [
    "cloudremoval:cloudmask", "cloudremoval:dbcr", "cloudremoval:de", "cloudremoval:diffcr", "cloudremoval:manyscenes",
]  # fmt: skip
SHARED = {
    "NFE": QgsProcessingParameterNumber,
    "MODEL": QgsProcessingParameterString,
    "DEVICE": QgsProcessingParameterEnum,
    "RUNTIME": QgsProcessingParameterEnum,
    "TILE_SIZE": QgsProcessingParameterNumber,
    "OVERLAP": QgsProcessingParameterNumber,
    "KEEP_CLEAR": QgsProcessingParameterBoolean,
    "CLOUD_THRESHOLD": QgsProcessingParameterNumber,
    "ADAPT": QgsProcessingParameterNumber,
    "COG": QgsProcessingParameterBoolean,
    "OUTPUT": QgsProcessingParameterRasterDestination,
    "CLOUD_MASK": QgsProcessingParameterRasterDestination,
    "CHANGE": QgsProcessingParameterRasterDestination,
}
ADVANCED = {"DEVICE", "RUNTIME", "TILE_SIZE", "OVERLAP", "KEEP_CLEAR", "CLOUD_THRESHOLD", "ADAPT", "COG"}


def definitions(algorithm_id: str) -> dict[str, Any]:
    algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    return {definition.name(): definition for definition in algorithm.parameterDefinitions()}


def test_provider_lists_the_algorithms(provider: Any) -> None:
    assert provider.id() == "cloudremoval"
    assert provider.name() == "Cloud removal"
    assert not provider.icon().isNull()
    assert sorted(algorithm.id() for algorithm in provider.algorithms()) == ALGORITHMS
    assert provider.svgIconPath().endswith("processing_provider/icons/cloud_removal.svg")
    for algorithm in provider.algorithms():
        assert not algorithm.icon().isNull(), algorithm.id()
        assert algorithm.svgIconPath().endswith(".svg") and "/processing_provider/icons/" in algorithm.svgIconPath()
        assert algorithm.group() and algorithm.groupId()


@pytest.mark.parametrize(
    ("algorithm_id", "name", "citation", "inputs", "nfe", "model"),
    [
        ("cloudremoval:dbcr", "DB-CR (Sentinel-1 + Sentinel-2)", "arXiv:2504.03607",
         {"OPTICAL": QgsProcessingParameterRasterLayer, "SAR": QgsProcessingParameterRasterLayer}, 1, "dbcr-lite"),
        ("cloudremoval:diffcr", "DiffCR (Sentinel-2, multi-date)", "arXiv:2308.04417",
         {"OPTICAL": QgsProcessingParameterMultipleLayers, "SAR": QgsProcessingParameterRasterLayer}, None,
         "diffcr-lite"),
        ("cloudremoval:de", "DE (high-resolution RGB / RGB+NIR)", "arXiv:2401.15105",
         {"OPTICAL": QgsProcessingParameterRasterLayer}, 10, "de-lite"),
    ],
    ids=["dbcr", "diffcr", "de"],
)  # fmt: skip
def test_removal_parameters(
    provider: Any, algorithm_id: str, name: str, citation: str, inputs: dict[str, type], nfe: Any, model: str
) -> None:
    from cloud_removal.processing_provider.compat import FLAG_ADVANCED, FLAG_OPTIONAL

    algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    assert algorithm.displayName() == name
    help_text = algorithm.shortHelpString()
    assert citation in help_text
    assert "invented detail" in help_text and "smoother" in help_text  # the NFE trade-off
    parameters = definitions(algorithm_id)
    assert {key: type(value) for key, value in parameters.items()} == {**inputs, **SHARED}
    assert (parameters["NFE"].defaultValue(), parameters["NFE"].minimum(), parameters["NFE"].maximum()) == (nfe, 1, 50)
    assert parameters["MODEL"].defaultValue() == model
    assert parameters["OVERLAP"].flags() & FLAG_OPTIONAL  # empty: the backend's quarter tile
    assert parameters["DEVICE"].options() == ["Automatic (GPU when available)", "CPU", "GPU (CUDA)"]
    assert parameters["RUNTIME"].options() == ["PyTorch", "ONNX Runtime"]
    assert parameters["CLOUD_THRESHOLD"].defaultValue() == pytest.approx(0.4)
    assert {key for key, value in parameters.items() if value.flags() & FLAG_ADVANCED} == ADVANCED
    assert parameters["OUTPUT"].defaultFileExtension() == "tif"
    for extra in ("CLOUD_MASK", "CHANGE"):
        assert parameters[extra].flags() & FLAG_OPTIONAL and not parameters[extra].createByDefault()
    if "SAR" in parameters:
        assert bool(parameters["SAR"].flags() & FLAG_OPTIONAL) == (algorithm_id == "cloudremoval:diffcr")
    outputs = {output.name(): type(output) for output in algorithm.outputDefinitions()}
    assert outputs["CLOUD_FRACTION"] is QgsProcessingOutputNumber


def test_cloudmask_parameters(provider: Any) -> None:
    algorithm = QgsApplication.processingRegistry().algorithmById("cloudremoval:cloudmask")
    assert "s2cloudless" in algorithm.shortHelpString() and "Sentinel Hub" in algorithm.shortHelpString()
    assert algorithm.group() == "Cloud masks"
    parameters = definitions("cloudremoval:cloudmask")
    assert list(parameters) == ["OPTICAL", "THRESHOLD", "DILATION", "AVERAGE_OVER", "PROBABILITY", "MASK"]
    assert parameters["THRESHOLD"].defaultValue() == pytest.approx(0.4)
    assert parameters["DILATION"].defaultValue() == 2


@pytest.mark.parametrize("algorithm_id", ["cloudremoval:dbcr", "cloudremoval:diffcr", "cloudremoval:de"])
def test_parameter_bounds_are_the_backends(provider: Any, plugin_package: Any, algorithm_id: str) -> None:
    from cloud_removal.backend.protocol import RUN_SETTINGS

    parameters = definitions(algorithm_id)
    table = {key: RUN_SETTINGS[name] for key, name in (
        ("NFE", "nfe"), ("TILE_SIZE", "tile_size"), ("OVERLAP", "overlap"), ("CLOUD_THRESHOLD", "cloud_threshold"),
        ("ADAPT", "adapt"),
    )}  # fmt: skip
    for key, setting in table.items():
        low = setting.unset if key == "TILE_SIZE" else setting.minimum  # tile size 0: the model's own
        assert (parameters[key].minimum(), parameters[key].maximum()) == (low, setting.maximum), key
    assert (table["TILE_SIZE"].minimum, table["TILE_SIZE"].maximum, table["TILE_SIZE"].multiple) == (32, 4096, 16)
    assert parameters["ADAPT"].defaultValue() == table["ADAPT"].default
    algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    assert [key for key, _ in algorithm.DEVICES] == list(RUN_SETTINGS["device"].choices)
    assert [key for key, _ in algorithm.RUNTIMES] == list(RUN_SETTINGS["runtime"].choices)


def test_many_scenes_parameters(provider: Any, plugin_package: Any) -> None:
    from cloud_removal.backend.protocol import RUN_SETTINGS
    from cloud_removal.processing_provider.compat import FLAG_ADVANCED

    algorithm = QgsApplication.processingRegistry().algorithmById("cloudremoval:manyscenes")
    assert algorithm.group() == "Remove clouds" and "optical,sar,output" in algorithm.shortHelpString()
    parameters = definitions("cloudremoval:manyscenes")
    assert list(parameters) == [
        "METHOD", "SCENES", "FOLDER", "NFE", "MODEL", "DEVICE", "KEEP_CLEAR", "WORKERS", "SCHEDULER", "OUTPUT_FOLDER",
    ]  # fmt: skip
    assert parameters["METHOD"].options()[0].startswith("DB-CR")
    nfe = RUN_SETTINGS["nfe"]
    assert (parameters["NFE"].minimum(), parameters["NFE"].maximum()) == (nfe.minimum, nfe.maximum)
    assert parameters["WORKERS"].defaultValue() == 1 and parameters["WORKERS"].minimum() == 1
    assert {key for key, value in parameters.items() if value.flags() & FLAG_ADVANCED} == {
        "DEVICE", "KEEP_CLEAR", "SCHEDULER",
    }  # fmt: skip
    outputs = {output.name() for output in algorithm.outputDefinitions()}
    assert outputs == {"OUTPUT_FOLDER", "WRITTEN", "SKIPPED", "FAILED"}


def test_cloudmask_bounds_are_the_backends(provider: Any, plugin_package: Any) -> None:
    from cloud_removal.backend.protocol import CLOUD_MASK_SETTINGS

    parameters = definitions("cloudremoval:cloudmask")
    for key, name in (("THRESHOLD", "threshold"), ("DILATION", "dilation"), ("AVERAGE_OVER", "average_over")):
        setting = CLOUD_MASK_SETTINGS[name]
        assert (parameters[key].minimum(), parameters[key].maximum()) == (setting.minimum, setting.maximum), key
    assert parameters["AVERAGE_OVER"].defaultValue() == CLOUD_MASK_SETTINGS["average_over"].default


def test_dock_choices_are_the_algorithm_defaults(provider: Any, plugin_package: Any) -> None:
    from cloud_removal.processing_provider import settings

    settings.save_choices(settings.RunChoices("cpu", 128, 32, "onnxruntime", True, 0.3))
    settings.set_method_nfe("dbcr", 4)
    settings.set_method_model("dbcr", "/models/mine.safetensors")
    try:
        algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
        parameters = {definition.name(): definition for definition in algorithm.parameterDefinitions()}
        defaults = {name: parameters[name].defaultValue() for name in ("DEVICE", "RUNTIME", "TILE_SIZE", "OVERLAP")}
        assert defaults == {"DEVICE": 1, "RUNTIME": 1, "TILE_SIZE": 128, "OVERLAP": 32}
        assert parameters["KEEP_CLEAR"].defaultValue() is True
        assert parameters["CLOUD_THRESHOLD"].defaultValue() == pytest.approx(0.3)
        assert parameters["NFE"].defaultValue() == 4
        assert parameters["MODEL"].defaultValue() == "/models/mine.safetensors"
    finally:
        settings.clear_choices()
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
    assert algorithm.parameterDefinition("NFE").defaultValue() == 1


def test_qgis_process_lists_the_provider_from_a_throwaway_profile(qgis_process: Any) -> None:
    listing = qgis_process("list")
    assert listing.returncode == 0, listing.text
    assert "cloudremoval:dbcr\tDB-CR (Sentinel-1 + Sentinel-2)" in listing.stdout
    assert "cloudremoval:diffcr\tDiffCR (Sentinel-2, multi-date)" in listing.stdout
    assert "cloudremoval:de\tDE (high-resolution RGB / RGB+NIR)" in listing.stdout
    assert "cloudremoval:cloudmask\t" in listing.stdout
    assert "cloudremoval:manyscenes\tRemove clouds from many scenes" in listing.stdout
    help_text = qgis_process("help", "cloudremoval:diffcr")
    assert help_text.returncode == 0, help_text.text
    for name in ("OPTICAL", "SAR", "NFE", "MODEL", "DEVICE", "RUNTIME", "KEEP_CLEAR", "CLOUD_MASK", "OUTPUT"):
        assert f"{name}: " in help_text.stdout
