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
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.transform import Affine, array_bounds
from rasterio.windows import Window

from backend.bands import BandMap, optical_band_map
from backend.errors import BadInputError, UnreadableFileError

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
        return rasterio.open(path)
    except RasterioIOError as error:
        raise UnreadableFileError(f"Cannot read {path}: {error}") from error


def _dtype_range(dtype: np.dtype) -> tuple[float, float]:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    finfo = np.finfo(dtype)
    return float(finfo.min), float(finfo.max)


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
        self, path: str, model_bands: tuple[str, ...], scale: float, l2a_offset: bool, algorithm: str, model: str
    ) -> None:
        """Open ``path`` and check that its bands can feed the model.

        Args:
            path: the Sentinel-2 raster.
            model_bands: the model card's ``optical_bands``.
            scale: DN that means reflectance 1.0 (the card's ``optical_scale``).
            l2a_offset: subtract the 1000 DN offset of processing baseline 04.00+.
            algorithm: the method's display name for messages (``DB-CR``).
            model: the model's name for messages.

        Raises:
            UnreadableFileError: the file cannot be read.
            BadInputError: its bands or data type cannot be used.
        """
        self.dataset = open_raster(path, "S2")
        try:
            self.band_map: BandMap = optical_band_map(self.dataset.descriptions, model_bands, algorithm, model)
            self.dtype = np.dtype(self.dataset.dtypes[0])
            if len(set(self.dataset.dtypes)) > 1 or np.issubdtype(self.dtype, np.complexfloating):
                raise BadInputError(f"S2 layer {path} mixes data types or is complex; save it with one real type")
        except BaseException:
            self.dataset.close()
            raise
        if self.band_map.dropped:
            log.warning(
                "Model %s does not restore band %s; the output leaves it out", model, ", ".join(self.band_map.dropped)
            )
        self.grid = Grid(self.dataset.crs, self.dataset.transform, self.dataset.width, self.dataset.height)
        self.nodata: float | None = self.dataset.nodata
        flags = self.dataset.mask_flag_enums[0]
        self.has_mask = MaskFlags.per_dataset in flags or MaskFlags.alpha in flags
        self.scale = float(scale)
        self.offset = BASELINE_04_OFFSET_DN if l2a_offset else 0.0
        self._fills = np.asarray(self.band_map.fills, dtype=np.float32)

    def close(self) -> None:
        """Close the dataset."""
        self.dataset.close()

    def __enter__(self) -> OpticalSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read one window.

        Returns:
            reflectance: float32 (len(model bands), h, w), model band order, invalid values filled.
            valid: bool (h, w), True where the pixel has data.
        """
        raw = self.dataset.read(self.band_map.read_indexes, window=window, out_dtype=np.float32)
        band_valid = np.isfinite(raw)
        if self.nodata is not None and not np.isnan(self.nodata):
            band_valid &= raw != np.float32(self.nodata)
        if self.has_mask:
            band_valid &= self.dataset.dataset_mask(window=window)[None] > 0
        valid = band_valid.any(axis=0)

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
        low, high = _dtype_range(self.dtype)
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
