"""Read Sentinel-1 backscatter on the optical grid, as the network's [0, 1] SAR input.

The S1 raster may have any CRS, resolution and extent (or only ground control points): it is warped on the fly
onto the S2 grid with a GDAL WarpedVRT (bilinear), window by window, so nothing is written to disk.

Scale: backscatter is either dB (typically -30..+5, mostly negative) or linear power (positive, mostly below 1).
``sar_scale="auto"`` looks at a coarse sample: if nearly all values are positive and their median is at most 1.5
the data are linear, else dB. Linear values become dB (10 log10), each band is clipped to the card's dB range
(VV -25..0, VH -32.5..0) and scaled linearly to [0, 1].

Coverage: if S1 and S2 share no ground the run stops with :class:`NoOverlapError`. Where S1 covers only part of
S2, or has nodata/NaN holes, the network gets :data:`models.card.SAR_MISSING` there (what it saw for "no radar" in
training) and the run carries on: the result
there rests on the optical bands alone, and a warning gives the uncovered fraction (measured on a coarse grid of at
most 512 x 512 cells) so the user can judge it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from backend.bands import sar_band_indexes
from backend.errors import BadInputError, NoOverlapError
from backend.raster_io import Grid, open_raster
from models.card import SAR_MISSING

log = logging.getLogger(__name__)

SAR_SCALES = ("auto", "db", "linear")
# Network input where no SAR exists: the value the models were trained with for missing radar.
SAR_FILL = SAR_MISSING
# Linear power below this is treated as this (-100 dB), far below every clip range, so log10(0) never appears.
_LINEAR_FLOOR = 1e-10
_COARSE_CELLS = 512


def detect_scale(values: np.ndarray) -> str:
    """Guess whether finite backscatter ``values`` are ``linear`` power or ``db``."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "db"
    positive = float(np.mean(values > 0))
    return "linear" if positive >= 0.99 and float(np.median(values)) <= 1.5 else "db"


def to_unit(values: np.ndarray, scale: str, ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """Turn backscatter (bands, h, w) into the network's [0, 1] range; NaN stays NaN.

    Args:
        values: float32 backscatter, one band per entry of ``ranges``.
        scale: ``db`` or ``linear``.
        ranges: per band, the (low, high) dB mapped onto 0 and 1.
    """
    if scale == "linear":
        with np.errstate(invalid="ignore"):
            values = 10.0 * np.log10(np.maximum(values, _LINEAR_FLOOR))
    out = np.empty_like(values, dtype=np.float32)
    for band, (low, high) in enumerate(ranges):
        out[band] = (np.clip(values[band], low, high) - low) / (high - low)
    return out


class SarSource:
    """A SAR raster warped onto the optical grid, read window by window.

    Attributes:
        coverage: fraction of the optical grid that has SAR data (coarse estimate, 0..1).
        scale: ``db`` or ``linear`` (detected or given).
        bands: 1-based source bands in the card's SAR band order.
    """

    def __init__(
        self,
        path: str,
        grid: Grid,
        card_bands: Sequence[str],
        db_ranges: Mapping[str, tuple[float, float]],
        sar_scale: str = "auto",
        explicit_bands: tuple[int, int] | None = None,
        algorithm: str = "DB-CR",
    ) -> None:
        """Open the SAR raster and check it against the optical grid.

        Raises:
            UnreadableFileError: the file cannot be read.
            BadInputError: wrong bands, data type or georeferencing.
            NoOverlapError: S1 and S2 share no ground.
        """
        if sar_scale not in SAR_SCALES:
            raise BadInputError(f"SAR scale must be one of {', '.join(SAR_SCALES)}, not {sar_scale!r}")
        self.dataset = open_raster(path, "S1")
        try:
            self.bands = self._choose_bands(card_bands, explicit_bands, algorithm)
            self._ranges = [(float(db_ranges[band][0]), float(db_ranges[band][1])) for band in card_bands]
            self._check_georeferencing(path, grid)
            self.vrt = self._warp(grid, Resampling.bilinear, grid.transform, grid.width, grid.height)
            sample = self._coarse_sample(grid)
        except BaseException:
            self.dataset.close()
            raise
        covered = np.isfinite(sample).all(axis=0)
        self.coverage = float(covered.mean())
        if self.coverage == 0.0:
            self.close()
            raise NoOverlapError("S1 and S2 do not overlap: the S1 layer has no data anywhere on the S2 image")
        self.scale = detect_scale(sample[:, covered]) if sar_scale == "auto" else sar_scale
        log.info("S1 backscatter read as %s (%s)", self.scale, "detected" if sar_scale == "auto" else "given")
        if self._assumed_order:
            self._check_order(sample[:, covered], list(card_bands))
        if self.coverage < 0.995:
            log.warning(
                "S1 covers about %.0f%% of the S2 image; where it is missing the model works from the optical "
                "bands alone (SAR set to the neutral value %.1f)",
                100 * self.coverage,
                SAR_FILL,
            )

    def _choose_bands(self, card_bands: Sequence[str], explicit: tuple[int, int] | None, algorithm: str) -> list[int]:
        (vv, vh), how = sar_band_indexes(self.dataset.descriptions, explicit, algorithm)
        dtype = np.dtype(self.dataset.dtypes[vv - 1])
        if not np.issubdtype(dtype, np.floating):
            raise BadInputError(
                f"S1 layer holds {dtype} values; {algorithm} needs calibrated backscatter (sigma0 in dB or linear, "
                "float). Calibrate and terrain-correct the GRD first (e.g. SNAP or the ASF RTC service)"
            )
        self._assumed_order = how == "assumed"
        if self._assumed_order:
            log.info("S1 bands have no VV/VH descriptions: using band %d as VV and band %d as VH", vv, vh)
        index = {"VV": vv, "VH": vh}
        missing = [band for band in card_bands if band not in index]
        if missing:
            raise BadInputError(f"The model needs SAR band {', '.join(missing)}, which this backend cannot read")
        return [index[band] for band in card_bands]

    def _check_order(self, sample: np.ndarray, card_bands: list[str]) -> None:
        """Warn when the band taken as VV is darker than the one taken as VH (VV is brighter almost everywhere)."""
        if "VV" not in card_bands or "VH" not in card_bands or sample.shape[1] == 0:
            return
        vv, vh = card_bands.index("VV"), card_bands.index("VH")
        if float(np.median(sample[vv])) < float(np.median(sample[vh])):
            log.warning(
                "S1 band %d, used as VV, is darker than band %d, used as VH, but VV is normally the brighter one; "
                "if the layer holds VH first, give the SAR bands as %d,%d",
                self.bands[vv],
                self.bands[vh],
                self.bands[vh],
                self.bands[vv],
            )

    def _check_georeferencing(self, path: str, grid: Grid) -> None:
        source = self.dataset
        if source.crs is None and not source.gcps[0]:
            raise BadInputError(f"S1 layer {path} has no georeferencing (no CRS); terrain-correct it first")
        if grid.crs is None:
            raise BadInputError("S2 layer has no coordinate reference system, so S1 cannot be placed on it")
        if source.crs is None:
            return  # Ground control points only: let the warper's coverage sample decide.
        try:
            left, bottom, right, top = transform_bounds(source.crs, grid.crs, *source.bounds, densify_pts=21)
        except RasterioError:
            return  # Bounds not expressible in the S2 CRS (e.g. across a pole): the coverage sample decides.
        g_left, g_bottom, g_right, g_top = grid.bounds
        if left >= g_right or right <= g_left or bottom >= g_top or top <= g_bottom:
            raise NoOverlapError(
                "S1 and S2 do not overlap; check that both layers show the same place and have the right CRS"
            )

    def _warp(self, grid: Grid, resampling: Resampling, transform: Affine, width: int, height: int) -> WarpedVRT:
        source = self.dataset
        # NaN marks "no SAR here" in the warped output; a source without nodata gets NaN as nodata so that
        # NaN holes are skipped by the bilinear kernel instead of spreading.
        src_nodata = source.nodata if source.nodata is not None else np.nan
        return WarpedVRT(
            source,
            crs=grid.crs,
            transform=transform,
            width=width,
            height=height,
            resampling=resampling,
            src_nodata=src_nodata,
            nodata=np.nan,
            dtype="float32",
        )

    def _coarse_sample(self, grid: Grid) -> np.ndarray:
        factor = max(1.0, max(grid.width, grid.height) / _COARSE_CELLS)
        width, height = max(1, math.ceil(grid.width / factor)), max(1, math.ceil(grid.height / factor))
        transform = grid.transform @ Affine.scale(grid.width / width, grid.height / height)
        with self._warp(grid, Resampling.nearest, transform, width, height) as coarse:
            return coarse.read(self.bands).astype(np.float32)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read one window of the optical grid.

        Returns:
            sar: float32 (len(card SAR bands), h, w) in [0, 1], :data:`SAR_FILL` where there is no SAR.
            covered: bool (h, w), True where every SAR band has data.
        """
        values = self.vrt.read(self.bands, window=window).astype(np.float32, copy=False)
        covered = np.isfinite(values).all(axis=0)
        unit = to_unit(values, self.scale, self._ranges)
        unit[:, ~covered] = SAR_FILL
        return unit, covered

    def close(self) -> None:
        """Close the warped view and the dataset."""
        if hasattr(self, "vrt"):
            self.vrt.close()
        self.dataset.close()

    def __enter__(self) -> SarSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
