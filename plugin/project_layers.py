"""Which layers of the project are Sentinel-2, Sentinel-1 or RGB images, and which ones a method should use.

The dock's "Run on current layers" needs no layer choice from the user in the common case: a project with one
cloudy Sentinel-2 image (12 or 13 bands) and one Sentinel-1 image (2 bands named VV/VH, or "s1" in the layer name)
has only one sensible input. When there are several, the active layer wins, then layers that overlap it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from qgis.core import QgsCoordinateTransform, QgsProject, QgsRasterLayer

METHOD_LABELS = {"dbcr": "DB-CR", "diffcr": "DiffCR", "de": "DE"}


class PickError(ValueError):
    """The project lacks a layer the method needs (a sentence for the user)."""


def kind_of(layer: QgsRasterLayer) -> str:
    """Return ``s2``, ``s1``, ``rgb`` or ``other`` for a raster layer, from its band count and names."""
    count = layer.bandCount()
    if count in (12, 13):
        return "s2"
    if count == 2:
        names = " ".join(layer.bandName(band) for band in (1, 2)).lower()
        title = layer.name().lower()
        if ("vv" in names and "vh" in names) or "s1" in title or "sentinel-1" in title or "sentinel1" in title:
            return "s1"
    if count in (3, 4):
        return "rgb"
    return "other"


@dataclass
class Inputs:
    """The layers picked for a run: the optical dates (first = the one cleaned) and the radar image, if any."""

    optical: list[QgsRasterLayer] = field(default_factory=list)
    sar: QgsRasterLayer | None = None

    def describe(self) -> str:
        """Return e.g. ``Sentinel-2: scene · Sentinel-1: radar``."""
        parts = [f"{'Optical' if len(self.optical) == 1 else 'Dates'}: " + ", ".join(x.name() for x in self.optical)]
        if self.sar is not None:
            parts.append(f"Sentinel-1: {self.sar.name()}")
        return " · ".join(parts)


def overlaps(first: QgsRasterLayer, second: QgsRasterLayer) -> bool:
    """Return True when two layers' extents intersect (in the first one's CRS)."""
    extent = second.extent()
    if first.crs().isValid() and second.crs().isValid() and first.crs() != second.crs():
        try:
            transform = QgsCoordinateTransform(second.crs(), first.crs(), QgsProject.instance())
            extent = transform.transformBoundingBox(extent)
        except Exception:
            return False
    return first.extent().intersects(extent)


def pick_inputs(
    method: str,
    layers: Sequence[QgsRasterLayer],
    active: QgsRasterLayer | None = None,
    dates: int = 1,
    wants_sar: bool | None = None,
) -> Inputs:
    """Pick the layers a method runs on.

    Args:
        method: ``dbcr``, ``diffcr`` or ``de``.
        layers: the project's raster layers, in layer-tree order.
        active: the active layer; it comes first when it fits.
        dates: how many cloudy dates the chosen model stacks (DiffCR).
        wants_sar: whether the model uses radar (from its card); None when unknown (then used if present).

    Raises:
        PickError: a layer the method needs is missing from the project.
    """
    layers = [layer for layer in layers if layer.isValid()]
    ordered = ([active] if active is not None and active in layers else []) + [x for x in layers if x is not active]
    label = METHOD_LABELS.get(method, method)
    optical_kind = "rgb" if method == "de" else "s2"
    optical = [layer for layer in ordered if kind_of(layer) == optical_kind]
    if method == "de" and not optical:
        optical = [layer for layer in ordered if kind_of(layer) == "s2"]
    if not optical:
        need = "an RGB or RGB + NIR image (3 or 4 bands)" if method == "de" else "a Sentinel-2 image (12 or 13 bands)"
        raise PickError(f"{label} needs {need}; the project has none. Add one (Layer › Add Layer › Raster).")
    first = optical[0]
    picked = Inputs([first, *[x for x in optical[1:] if overlaps(first, x)][: max(0, dates - 1)]])
    if method == "de" or wants_sar is False:
        return picked
    radar = [layer for layer in ordered if kind_of(layer) == "s1"]
    radar = [layer for layer in radar if overlaps(first, layer)] or radar
    if radar:
        picked.sar = radar[0]
    elif method == "dbcr" or wants_sar:
        raise PickError(
            f"{label} needs a Sentinel-1 image (2 bands, VV and VH) of the same place; the project has none. Add "
            "one, with “VV”/“VH” band names or “s1” in its layer name."
        )
    return picked
