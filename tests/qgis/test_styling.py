"""Outputs look like the ground: true colour with a 2-98 % cumulative cut, masks as a see-through overlay."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsProject, QgsRasterLayer
from qgis_support import FAKE_BACKEND, SAMPLE_RGB, SAMPLE_S1, SAMPLE_S2, RecordingFeedback, write_subset


@pytest.fixture
def styling(plugin_package: Any) -> Any:
    from cloud_removal.processing_provider import styling

    return styling


@pytest.mark.parametrize(("bands", "expected"), [(13, (4, 3, 2)), (12, (4, 3, 2)), (3, (1, 2, 3)), (4, (1, 2, 3)),
                                                 (2, None), (1, None)])  # fmt: skip
def test_true_colour_bands(styling: Any, bands: int, expected: Any) -> None:
    assert styling.true_colour_bands(bands) == expected


def test_sentinel2_is_shown_as_b4_b3_b2_with_a_cumulative_cut(styling: Any) -> None:
    layer = QgsRasterLayer(str(SAMPLE_S2), "s2")
    assert styling.style_true_colour(layer)
    renderer = layer.renderer()
    assert renderer.type() == "multibandcolor"
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (4, 3, 2)
    provider = layer.dataProvider()
    for band, enhancement in zip((4, 3, 2), (renderer.redContrastEnhancement(), renderer.greenContrastEnhancement(),
                                             renderer.blueContrastEnhancement())):  # fmt: skip
        low, high = provider.cumulativeCut(band, 0.02, 0.98, layer.extent(), styling.SAMPLE_SIZE)
        assert (enhancement.minimumValue(), enhancement.maximumValue()) == pytest.approx((low, high))
        assert enhancement.contrastEnhancementAlgorithm() == styling.STRETCH_MIN_MAX
    origin = renderer.minMaxOrigin()
    assert origin.limits() == styling.LIMITS_CUMULATIVE_CUT
    assert (origin.cumulativeCutLower(), origin.cumulativeCutUpper()) == pytest.approx((0.02, 0.98))


def test_rgb_uses_bands_1_2_3_and_two_bands_keep_the_default(styling: Any, tmp_path: Path) -> None:
    rgb = QgsRasterLayer(str(write_subset(SAMPLE_S2, tmp_path / "rgb.tif", bands=[4, 3, 2])), "rgb")
    assert styling.style_true_colour(rgb)
    assert (rgb.renderer().redBand(), rgb.renderer().greenBand(), rgb.renderer().blueBand()) == (1, 2, 3)
    sar = QgsRasterLayer(str(SAMPLE_S1), "s1")
    before = sar.renderer().type()
    assert not styling.style_true_colour(sar)
    assert sar.renderer().type() == before


def test_an_eight_bit_image_keeps_its_0_to_255_range(styling: Any) -> None:
    layer = QgsRasterLayer(str(SAMPLE_RGB), "rgb")
    assert styling.style_true_colour(layer)
    renderer = layer.renderer()
    for enhancement in (renderer.redContrastEnhancement(), renderer.greenContrastEnhancement(),
                        renderer.blueContrastEnhancement()):  # fmt: skip
        assert (enhancement.minimumValue(), enhancement.maximumValue()) == (0, 255)


def test_cloud_mask_is_a_see_through_overlay(styling: Any, tmp_path: Path) -> None:
    layer = QgsRasterLayer(str(write_subset(SAMPLE_S2, tmp_path / "mask.tif", bands=[1])), "mask")
    assert styling.style_cloud_mask(layer)
    classes = {item.value: item.color.alpha() for item in layer.renderer().classes()}
    assert classes == {0: 0, 1: styling.CLOUD_COLOUR.alpha()}


def test_processing_loads_the_output_styled_and_named(
    provider: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOUD_REMOVAL_PYTHON", str(FAKE_BACKEND))
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "copy")  # the "result" is a copy of the input: a real GeoTIFF
    output = tmp_path / "out.tif"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    # what the Processing dialog does when "Open output file after running" is ticked
    context.addLayerToLoadOnCompletion(
        str(output), QgsProcessingContext.LayerDetails("Cloud-free image", QgsProject.instance(), "OUTPUT")
    )
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("cloudremoval:dbcr")
    _, ok = algorithm.run(
        {"OPTICAL": str(SAMPLE_S2), "SAR": str(SAMPLE_S1), "OUTPUT": str(output)}, context, RecordingFeedback()
    )
    assert ok
    del algorithm
    gc.collect()  # the post-processor must survive the algorithm that made it (the PyQGIS pitfall)
    details = context.layerToLoadOnCompletionDetails(str(output))
    post_processor = details.postProcessor()
    assert post_processor is not None
    layer = QgsRasterLayer(str(output), details.name)
    post_processor.postProcessLayer(layer, context, RecordingFeedback())  # what QGIS does once it loaded the layer
    assert layer.renderer().type() == "multibandcolor"
    assert (layer.renderer().redBand(), layer.renderer().greenBand(), layer.renderer().blueBand()) == (4, 3, 2)
    assert layer.name() == "ROIs1868_summer_s2_cloudy_19_p30 cloud-free (DB-CR)"
