"""Read the optical (Sentinel-2) input as reflectance tiles and turn restored reflectance back into its digital numbers.

Conventions: reflectance = (DN - offset) / scale, with scale = the card's ``optical_scale`` (10000 for Sentinel-2)
and offset = 1000 DN when ``l2a_offset`` is set (products of processing baseline 04.00 and later add 1000 DN so that
dark pixels are not clipped at zero: ``BOA_ADD_OFFSET`` in L2A, ``RADIO_ADD_OFFSET`` in L1C, both -1000).
The output uses the same scale and offset, so it can replace the input in any workflow.

Nodata: a pixel is valid when at least one of its bands is valid (GDAL's dataset-mask rule), where a band is invalid
if it equals the nodata value, is NaN, or the internal mask or alpha says so. Invalid values of valid pixels and
all values of invalid pixels are filled with the tile's mean valid reflectance of that band before the network, so
a hole does not read as a black object; invalid pixels are written back as nodata.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.io import DatasetReader
from rasterio.transform import Affine, array_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from backend.bands import BandMap, is_sentinel2_model, optical_band_map
from backend.errors import BadInputError, NoOverlapError, UnreadableFileError
from backend.nodata import band_validity, has_valid_pixel, mask_kind, no_data_error
from backend.optical_scale import choose_scale, dtype_range

log = logging.getLogger(__name__)

# DN added by Sentinel-2 processing baseline 04.00 and later (the product metadata's offset is -1000).
BASELINE_04_OFFSET_DN = 1000.0


@dataclass(frozen=True)
class Grid:
    """A raster grid: the optical input's, which is also the output's and the one SAR is warped onto."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid's CRS units."""
        left, bottom, right, top = array_bounds(self.height, self.width, self.transform)
        return (left, bottom, right, top)


def open_raster(path: str, role: str) -> DatasetReader:
    """Open a raster for reading or explain why it cannot be read.

    Args:
        path: file path (or any GDAL path).
        role: the layer's role for messages, e.g. ``S2`` or ``S1``.

    Raises:
        UnreadableFileError: the file is missing or GDAL cannot read it.
    """
    if "://" not in path and not path.startswith("/vsi") and not os.path.exists(path):
        raise UnreadableFileError(f"Cannot read {path}: the {role} file does not exist")
    try:
        with warnings.catch_warnings():
            # Plain PNG/JPEG images have no georeferencing; the output then has none either, which is no fault.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as error:
        raise UnreadableFileError(f"Cannot read {path}: {error}") from error


def georeferenced(grid: Grid) -> bool:
    """Whether a grid has a CRS or a real transform (a plain PNG or JPEG has neither)."""
    return grid.crs is not None or not grid.transform.is_identity


def warped_onto(dataset: DatasetReader, grid: Grid, what: str) -> DatasetReader | WarpedVRT:
    """``dataset`` itself when it lies on ``grid``, else a bilinear warped view of it on ``grid`` (NaN outside).

    Args:
        dataset: an extra optical date.
        grid: the first date's grid.
        what: the raster in messages, e.g. ``Optical date 2 (b.tif)``.

    Raises:
        BadInputError: one of the two has no georeferencing and they differ in size.
        NoOverlapError: they share no ground.
    """
    own = Grid(dataset.crs, dataset.transform, dataset.width, dataset.height)
    if own == grid or (not georeferenced(own) and not georeferenced(grid) and own.width == grid.width
                       and own.height == grid.height):  # fmt: skip
        return dataset
    if not georeferenced(own) or grid.crs is None or own.crs is None:
        raise BadInputError(
            f"{what} is {own.width} x {own.height} pixels and the first date {grid.width} x {grid.height}, and "
            "without a CRS on both it cannot be placed on the first; give every date on the same grid"
        )
    try:
        left, bottom, right, top = transform_bounds(own.crs, grid.crs, *dataset.bounds, densify_pts=21)
    except RasterioError:
        left, bottom, right, top = grid.bounds  # not expressible in the first date's CRS: let the warp decide
    g_left, g_bottom, g_right, g_top = grid.bounds
    if left >= g_right or right <= g_left or bottom >= g_top or top <= g_bottom:
        raise NoOverlapError(f"{what} does not overlap the first optical date; check that both show the same place")
    log.info("%s is on another grid: warped onto the first date's grid (bilinear)", what)
    return WarpedVRT(
        dataset,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=Resampling.bilinear,
        src_nodata=dataset.nodata,
        nodata=np.nan,
        dtype="float32",
    )


def check_has_data(path: str) -> None:
    """Refuse an optical raster that is all nodata before any model is loaded (every band but an alpha counts).

    Raises:
        UnreadableFileError: the file cannot be read.
        BadInputError: no pixel holds data.
    """
    with open_raster(path, "optical") as dataset:
        count = dataset.count
        if count > 1 and dataset.colorinterp[-1] == ColorInterp.alpha:
            count -= 1
        if not has_valid_pixel(dataset, list(range(1, count + 1)), dataset.nodata, mask_kind(dataset)):
            raise no_data_error(path, dataset.nodata)


class OpticalSource:
    """The optical input, read window by window as reflectance in the model's band order.

    Attributes:
        dataset: the open rasterio dataset.
        grid: its grid (CRS, transform, size).
        band_map: how its bands map onto the model's.
        dtype: its data type (also the output's).
        nodata: its nodata value (also the output's), or None.
        has_mask: whether validity comes from an internal mask or alpha band (written back as a mask).
    """

    def __init__(
        self,
        path: str,
        model_bands: tuple[str, ...],
        scale: float,
        l2a_offset: bool,
        algorithm: str,
        model: str,
        *,
        explicit_scale: float | None = None,
        onto: Grid | None = None,
        what: str | None = None,
    ) -> None:
        """Open ``path`` and check that its bands can feed the model.

        Args:
            path: the optical raster (Sentinel-2, or RGB / RGB + NIR for models of visible bands).
            model_bands: the model card's ``optical_bands``.
            scale: the card's ``optical_scale`` (see :func:`choose_scale` for the scale actually used).
            l2a_offset: subtract the 1000 DN offset of processing baseline 04.00+.
            algorithm: the method's display name for messages (``DB-CR``).
            model: the model's name for messages.
            explicit_scale: the DN that means reflectance 1.0, overriding the card's.
            onto: read the raster on this grid (an extra date onto the first date's grid), warping if needed.
            what: the raster in messages (default ``S2 layer PATH`` or ``Optical layer PATH``).

        Raises:
            UnreadableFileError: the file cannot be read.
            BadInputError: its bands, data type or grid cannot be used.
        """
        role = "S2" if is_sentinel2_model(model_bands) else "optical"
        self.dataset = open_raster(path, role)
        self._reader: DatasetReader | WarpedVRT = self.dataset
        what = what or f"{role[0].upper()}{role[1:]} layer {path}"
        try:
            descriptions = self.dataset.descriptions
            if self.dataset.count > 1 and self.dataset.colorinterp[-1] == ColorInterp.alpha:
                descriptions = descriptions[:-1]  # an alpha band marks valid pixels (see has_mask), it is no band
            self.band_map: BandMap = optical_band_map(descriptions, model_bands, algorithm, model)
            self.dtype = np.dtype(self.dataset.dtypes[0])
            if len(set(self.dataset.dtypes)) > 1 or np.issubdtype(self.dtype, np.complexfloating):
                raise BadInputError(f"{what} mixes data types or is complex; save it with one real type")
            self.scale = choose_scale(self.dataset, self.band_map.read_indexes, scale, explicit_scale)
            if onto is not None:
                self._reader = warped_onto(self.dataset, onto, what)
        except BaseException:
            self.dataset.close()
            raise
        if self.band_map.dropped:
            log.warning(
                "Model %s does not restore band %s; the output leaves it out", model, ", ".join(self.band_map.dropped)
            )
        self.grid = onto or Grid(self.dataset.crs, self.dataset.transform, self.dataset.width, self.dataset.height)
        warped = self._reader is not self.dataset
        # A warped view marks "no data" with NaN, which every read already treats as invalid.
        self.nodata: float | None = None if warped else self.dataset.nodata
        self.has_mask = not warped and mask_kind(self.dataset)
        self.offset = BASELINE_04_OFFSET_DN if l2a_offset else 0.0
        self._fills = np.asarray(self.band_map.fills, dtype=np.float32)

    def close(self) -> None:
        """Close the dataset (and its warped view)."""
        if self._reader is not self.dataset:
            self._reader.close()
        self.dataset.close()

    def __enter__(self) -> OpticalSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, window: Window, out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read one window, at full resolution or averaged down to ``out_shape`` (rows, cols).

        Returns:
            reflectance: float32 (len(model bands), h, w), model band order, invalid values filled.
            valid: bool (h, w), True where the pixel has data.
        """
        indexes = self.band_map.read_indexes
        shape = (len(indexes), *out_shape) if out_shape is not None else None
        raw = self._reader.read(
            indexes, window=window, out_dtype=np.float32, out_shape=shape, resampling=Resampling.average
        )
        band_valid = band_validity(self.dataset, raw, window, self.nodata, self.has_mask)
        valid = np.any(band_valid, axis=0)

        reflectance = np.empty((len(self.band_map.model_sources), *raw.shape[1:]), dtype=np.float32)
        read_slot = 0
        for channel, source in enumerate(self.band_map.model_sources):
            if source is None:
                reflectance[channel] = self._fills[channel]
                continue
            band = (raw[read_slot] - np.float32(self.offset)) / np.float32(self.scale)
            ok = band_valid[read_slot]
            if not ok.all():
                band[~ok] = band[ok].mean() if ok.any() else 0.0
            reflectance[channel] = band
            read_slot += 1
        return reflectance, valid

    def check_has_data(self, path: str) -> None:
        """Refuse a raster whose bands read by the model hold no valid pixel (see :func:`has_valid_pixel`).

        Raises:
            BadInputError: every pixel is nodata.
        """
        if not has_valid_pixel(self.dataset, list(self.band_map.read_indexes), self.nodata, self.has_mask):
            raise no_data_error(path, self.nodata)

    def encode(self, reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Turn restored reflectance back into the input's bands (those restored), data type and scale.

        Args:
            reflectance: float32 (len(model bands), h, w) in model band order.
            valid: bool (h, w); False pixels become nodata.

        Returns:
            (output bands, h, w) array of the input's dtype: DN = reflectance x scale + offset, rounded and clipped
            to the dtype's range.
        """
        values = reflectance[list(self.band_map.output_sources)] * np.float32(self.scale) + np.float32(self.offset)
        low, high = dtype_range(self.dtype)
        if np.issubdtype(self.dtype, np.integer):
            values = np.clip(np.rint(values), low, high)
            if self.nodata is not None:
                # A restored pixel that lands on the nodata value would vanish in GIS software: nudge it one DN.
                nudge = 1.0 if self.nodata < high else -1.0
                values[(values == self.nodata) & valid[None]] += nudge
        else:
            values = np.clip(values, low, high)
        fill = self.nodata if self.nodata is not None else (np.nan if not self.has_mask else 0)
        if np.issubdtype(self.dtype, np.integer) and fill is not None and np.isnan(fill):
            fill = 0
        values[:, ~valid] = fill
        return values.astype(self.dtype)
