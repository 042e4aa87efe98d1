"""How outputs look when they are loaded: true colour for images, a see-through overlay for cloud masks.

QGIS opens a 13-band Sentinel-2 image as bands 1, 2, 3 (coastal aerosol, blue, green) stretched to min/max, which
looks nothing like the ground. Outputs are shown as a person sees them: red, green, blue (B4, B3, B2 for
Sentinel-2; bands 1, 2, 3 for RGB), each stretched over its 2-98 % cumulative cut, so one cloud does not darken
the whole picture. 8-bit images (DE's RGB) are already display-ready and keep their 0-255 range: a cut of a
cloud-free sea would stretch a few grey levels of noise over the whole range.

Processing loads outputs after the algorithm ends; :class:`LayerStyler` is the post-processor that styles them
then. QGIS keeps only a borrowed pointer to the Python part of a post-processor, so every instance is kept alive
here (a known PyQGIS pitfall: without it, the styling silently does not happen, or QGIS crashes).
"""

from __future__ import annotations

from collections.abc import Callable

from qgis.core import (
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtGui import QColor

from .compat import BYTE, LIMITS_CUMULATIVE_CUT, STRETCH_MIN_MAX

CUT = (0.02, 0.98)
# Enough pixels for a stable percentile, few enough that styling a large scene takes no time.
SAMPLE_SIZE = 250_000
CLOUD_COLOUR = QColor(255, 64, 255, 170)


def true_colour_bands(band_count: int) -> tuple[int, int, int] | None:
    """Return the (red, green, blue) band numbers of an image with ``band_count`` bands, or None.

    12 or 13 bands is Sentinel-2 (L2A or L1C, B1 first: B4, B3, B2 are bands 4, 3, 2); 3 or more others are
    taken as RGB first (RGB, RGB + NIR).
    """
    if band_count in (12, 13):
        return (4, 3, 2)
    if band_count >= 3:
        return (1, 2, 3)
    return None


def style_true_colour(layer: QgsRasterLayer) -> bool:
    """Show ``layer`` in true colour, stretched (8-bit: 0-255); return False if it has too few bands."""
    provider = layer.dataProvider()
    bands = true_colour_bands(layer.bandCount()) if provider is not None else None
    if bands is None:
        return False
    renderer = QgsMultiBandColorRenderer(provider, *bands)
    setters = (
        renderer.setRedContrastEnhancement,
        renderer.setGreenContrastEnhancement,
        renderer.setBlueContrastEnhancement,
    )
    eight_bit = all(provider.dataType(band) == BYTE for band in bands)
    for band, setter in zip(bands, setters):
        if eight_bit:
            low, high = 0.0, 255.0
        else:
            low, high = provider.cumulativeCut(band, CUT[0], CUT[1], layer.extent(), SAMPLE_SIZE)
        enhancement = QgsContrastEnhancement(provider.dataType(band))
        enhancement.setContrastEnhancementAlgorithm(STRETCH_MIN_MAX)
        enhancement.setMinimumValue(low)
        enhancement.setMaximumValue(high if high > low else low + 1)
        setter(enhancement)
    if not eight_bit:
        origin = renderer.minMaxOrigin()
        origin.setLimits(LIMITS_CUMULATIVE_CUT)
        origin.setCumulativeCutLower(CUT[0])
        origin.setCumulativeCutUpper(CUT[1])
        renderer.setMinMaxOrigin(origin)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return True


def style_cloud_mask(layer: QgsRasterLayer) -> bool:
    """Show a cloud mask (1 cloud, 0 clear) as a see-through magenta overlay; clear pixels are invisible."""
    provider = layer.dataProvider()
    if provider is None:
        return False
    classes = [
        QgsPalettedRasterRenderer.Class(0, QColor(0, 0, 0, 0), "clear"),
        QgsPalettedRasterRenderer.Class(1, CLOUD_COLOUR, "cloud"),
    ]
    layer.setRenderer(QgsPalettedRasterRenderer(provider, 1, classes))
    layer.triggerRepaint()
    return True


def style_ramp(
    layer: QgsRasterLayer, ramp_name: str = "Magma", low: float | None = None, high: float | None = None
) -> bool:
    """Show one band through a colour ramp, over ``low``-``high`` or its 2-98 % cumulative cut."""
    provider = layer.dataProvider()
    if provider is None:
        return False
    if low is None or high is None:
        low, high = provider.cumulativeCut(1, CUT[0], CUT[1], layer.extent(), SAMPLE_SIZE)
    ramp = QgsStyle.defaultStyle().colorRamp(ramp_name)
    shader_function = QgsColorRampShader(low, high if high > low else low + 1)
    if ramp is not None:
        shader_function.setSourceColorRamp(ramp)
    shader_function.classifyColorRamp(5)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(provider, 1, shader)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high if high > low else low + 1)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return True


STYLES: dict[str, Callable[[QgsRasterLayer], bool]] = {
    "true_colour": style_true_colour,
    "cloud_mask": style_cloud_mask,
    "probability": lambda layer: style_ramp(layer, "Blues", 0.0, 1.0),
    "change": lambda layer: style_ramp(layer, "Magma"),
}

_KEEP_ALIVE: list[LayerStyler] = []


class LayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles (and optionally renames) a Processing output when QGIS loads it."""

    def __init__(self, style: str, name: str = "", replaces: str = "") -> None:
        """Style with ``STYLES[style]``; rename the layer ``name`` if it is called ``replaces`` (or always if empty).

        The rename turns Processing's generic "Cloud-free image" into "<input> cloud-free (DB-CR)", and leaves a
        name the user chose (a file name) alone.
        """
        super().__init__()
        self.style = style
        self.name = name
        self.replaces = replaces

    def postProcessLayer(
        self, layer: QgsRasterLayer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        """Apply the style to the loaded layer."""
        if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
            return
        if self.name and (not self.replaces or layer.name() == self.replaces):
            layer.setName(self.name)
        if not STYLES[self.style](layer) and feedback is not None:
            feedback.pushInfo(f"{layer.name()}: kept QGIS's default style ({layer.bandCount()} bands).")


def style_on_load(context: QgsProcessingContext, output: str, style: str, name: str = "", replaces: str = "") -> None:
    """Have ``output`` styled with ``style`` (and renamed, see :class:`LayerStyler`) if Processing loads it."""
    if not output or not context.willLoadLayerOnCompletion(output):
        return
    styler = LayerStyler(style, name, replaces)
    _KEEP_ALIVE.append(styler)  # a few hundred bytes per loaded output, for the QGIS session
    context.layerToLoadOnCompletionDetails(output).setPostProcessor(styler)
