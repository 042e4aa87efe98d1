"""Map the bands of a user's rasters onto the bands a model expects, by name when the file names them.

Sentinel-2 products come as 13 bands (L1C: B1..B12 with B8A and B10) or 12 bands (L2A: no B10, the cirrus band is
consumed by atmospheric correction). When every band carries a description naming it (``B02``, ``B8A``, ``B4 red``
...) the descriptions decide, whatever the count; otherwise the count decides, assuming the standard order of
:data:`S2_L1C_BANDS` (13) or :data:`S2_L2A_BANDS` (12). A model band the input lacks is an error, except B10, which
is filled (see :data:`MISSING_BAND_FILL`); an input band the model does not restore is left out of the output.

Models of a few visible bands (DE and DiffCR on RICE, CUHK-CR or Sen2_MTC: RGB or RGB + NIR) also take ordinary
RGB images (PNG, JPEG, GeoTIFF) whose bands are named nowhere: their bands map by position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from backend.errors import BadInputError
from models.card import MISSING_BAND_FILL, S2_L1C_BANDS, S2_L2A_BANDS

# The filled B10 (see models.card) is used only as network input and is dropped from the output.
_S2_NAME = re.compile(r"(?<![A-Z0-9])B0?(\d{1,2}A?)(?![0-9A-Z])", re.IGNORECASE)
# Names of RGB-like inputs without band descriptions, by band count (as models.importers names such models).
VISIBLE_BANDS_BY_COUNT = {3: ("B4", "B3", "B2"), 4: ("B4", "B3", "B2", "B8")}
_SAR_NAME = re.compile(r"(?<![A-Z])(VV|VH)(?![A-Z])", re.IGNORECASE)


def parse_s2_band(description: str | None) -> str | None:
    """Canonical Sentinel-2 band name in a band description ("B02" -> "B2", "b8a" -> "B8A"), or None."""
    if not description:
        return None
    match = _S2_NAME.search(description)
    if match is None:
        return None
    name = "B" + match.group(1).upper()
    return name if name in S2_L1C_BANDS else None


def parse_sar_band(description: str | None) -> str | None:
    """``VV`` or ``VH`` when a band description names one of them, else None."""
    if not description:
        return None
    match = _SAR_NAME.search(description)
    return match.group(1).upper() if match else None


@dataclass(frozen=True)
class BandMap:
    """How an optical input's bands relate to a model's bands.

    Attributes:
        input_bands: the input's band names, in file order.
        model_sources: for each model band, the 1-based input band it is read from, or None when it is filled
            with :data:`MISSING_BAND_FILL`.
        fills: for each model band, the fill reflectance (used only where ``model_sources`` is None).
        output_bands: the output's bands: the input's, in file order, less those the model does not restore.
        output_sources: for each output band, the index of the model channel that restores it.
    """

    input_bands: tuple[str, ...]
    model_sources: tuple[int | None, ...]
    fills: tuple[float, ...]
    output_bands: tuple[str, ...]
    output_sources: tuple[int, ...]

    @property
    def dropped(self) -> tuple[str, ...]:
        """Input bands the model does not restore (left out of the output)."""
        return tuple(band for band in self.input_bands if band not in self.output_bands)

    @property
    def read_indexes(self) -> list[int]:
        """1-based input bands to read, in model order, without the filled ones."""
        return [index for index in self.model_sources if index is not None]

    @property
    def level(self) -> str:
        """``L1C`` when the input has B10, else ``L2A``."""
        return "L1C" if "B10" in self.input_bands else "L2A"


def _wrong_count(count: int, algorithm: str) -> BadInputError:
    band_word = "band" if count == 1 else "bands"
    return BadInputError(
        f"S2 layer has {count} {band_word}; {algorithm} needs a Sentinel-2 L1C (13 bands) or L2A (12 bands) image"
    )


def input_band_names(descriptions: Sequence[str | None], algorithm: str) -> tuple[str, ...]:
    """Name the input's bands from their descriptions, or by the standard order for their count.

    Raises:
        BadInputError: the descriptions do not name every band and the count is neither 12 nor 13, or the
            descriptions name a band twice.
    """
    count = len(descriptions)
    parsed = [parse_s2_band(description) for description in descriptions]
    if count and all(parsed):
        names = tuple(name for name in parsed if name)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise BadInputError(
                f"S2 layer names band {', '.join(duplicates)} more than once in its band descriptions; "
                "fix the descriptions or remove them to use the standard band order"
            )
        return names
    if count not in (12, 13):
        raise _wrong_count(count, algorithm)
    return S2_L1C_BANDS if count == 13 else S2_L2A_BANDS


def is_sentinel2_model(model_bands: Sequence[str]) -> bool:
    """Whether a model restores (nearly) every Sentinel-2 band, rather than a few visible ones such as RGB."""
    return len(model_bands) >= min(len(S2_L2A_BANDS), len(S2_L1C_BANDS))


def _visible_band_names(
    descriptions: Sequence[str | None], model_bands: Sequence[str], algorithm: str, model_name: str
) -> tuple[str, ...]:
    """Name the bands of an RGB-like input without band descriptions, for a model of a few visible bands.

    The same count as the model: by position (the model's band order). Otherwise 3 bands are R, G, B and 4 bands
    R, G, B, NIR (the importer's names), so that an RGB + NIR image can feed an RGB model.
    """
    count = len(descriptions)
    if count == len(model_bands):
        return tuple(model_bands)
    if count in VISIBLE_BANDS_BY_COUNT:
        return VISIBLE_BANDS_BY_COUNT[count]
    band_word = "band" if count == 1 else "bands"
    kind = "an RGB image" if len(model_bands) == 3 else "an RGB + NIR image" if len(model_bands) == 4 else "an image"
    raise BadInputError(
        f"Optical layer has {count} {band_word}; {algorithm} model {model_name} needs {len(model_bands)} bands "
        f"({', '.join(model_bands)} in this order): {kind}"
    )


def optical_band_map(
    descriptions: Sequence[str | None], model_bands: Sequence[str], algorithm: str, model_name: str
) -> BandMap:
    """Build the :class:`BandMap` of an optical input for a model.

    Sentinel-2 models (12 or 13 bands) name the input's bands as :func:`input_band_names` does. Models of a few
    visible bands (RGB, RGB + NIR) take band descriptions naming Sentinel-2 bands when every band has one, and
    otherwise map the input's bands by position (see :func:`_visible_band_names`).

    Args:
        descriptions: the input's band descriptions, one per band (None where unset).
        model_bands: the model card's ``optical_bands``, in network order.
        algorithm: the method's display name for messages, e.g. ``DB-CR``.
        model_name: the model's name for messages.

    Raises:
        BadInputError: the input's bands cannot feed this model.
    """
    sentinel2 = is_sentinel2_model(model_bands)
    named = bool(descriptions) and all(parse_s2_band(text) for text in descriptions)
    if sentinel2 or named or len(descriptions) in (12, 13):
        names = input_band_names(descriptions, algorithm)
    else:
        names = _visible_band_names(descriptions, model_bands, algorithm, model_name)
    position = {name: index for index, name in enumerate(names)}
    missing = [band for band in model_bands if band not in position and band not in MISSING_BAND_FILL]
    if missing:
        advice = (
            "use a full Sentinel-2 L1C (13 bands) or L2A (12 bands) image"
            if sentinel2
            else f"give an image with bands {', '.join(model_bands)}"
        )
        layer = "S2" if sentinel2 or named else "Optical"
        raise BadInputError(f"{layer} layer lacks band {', '.join(missing)}, which model {model_name} needs; {advice}")
    sources = tuple(position[band] + 1 if band in position else None for band in model_bands)
    fills = tuple(MISSING_BAND_FILL.get(band, 0.0) for band in model_bands)
    channel = {band: index for index, band in enumerate(model_bands)}
    # Bands the model does not restore (B10 for an L2A model, say) cannot be written: they are left out.
    kept = tuple(name for name in names if name in channel)
    return BandMap(names, sources, fills, kept, tuple(channel[name] for name in kept))


def sar_band_indexes(
    descriptions: Sequence[str | None], explicit: tuple[int, int] | None, algorithm: str
) -> tuple[tuple[int, int], str]:
    """Choose the 1-based (VV, VH) bands of a SAR raster.

    Order of precedence: ``explicit`` (the user said so), band descriptions naming VV and VH, else band 1 = VV and
    band 2 = VH.

    Returns:
        The (VV, VH) band indexes and how they were chosen (``explicit``, ``descriptions`` or ``assumed``).

    Raises:
        BadInputError: fewer than two bands, or an explicit band that does not exist.
    """
    count = len(descriptions)
    if count < 2:
        band_word = "band" if count == 1 else "bands"
        raise BadInputError(f"S1 layer has {count} {band_word}; {algorithm} needs VV and VH")
    if explicit is not None:
        for index in explicit:
            if not 1 <= index <= count:
                raise BadInputError(f"S1 layer has {count} bands; there is no band {index} to use as VV or VH")
        if explicit[0] == explicit[1]:
            raise BadInputError("VV and VH must be two different bands of the S1 layer")
        return explicit, "explicit"
    parsed = [parse_sar_band(description) for description in descriptions]
    if parsed.count("VV") == 1 and parsed.count("VH") == 1:
        return (parsed.index("VV") + 1, parsed.index("VH") + 1), "descriptions"
    return (1, 2), "assumed"
