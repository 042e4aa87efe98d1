"""Which project layers a run uses: Sentinel-2 by band count, Sentinel-1 by bands and names, RGB for DE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from osgeo import gdal
from qgis.core import QgsRasterLayer
from qgis_support import SAMPLE_S1, SAMPLE_S2, write_subset


@pytest.fixture
def picking(plugin_package: Any) -> Any:
    from cloud_removal.plugin import project_layers

    return project_layers


def layer(path: Path, name: str) -> QgsRasterLayer:
    result = QgsRasterLayer(str(path), name)
    assert result.isValid()
    return result


def named_bands(path: Path, names: list[str]) -> Path:
    dataset = gdal.Open(str(path), gdal.GA_Update)
    for index, name in enumerate(names, start=1):
        dataset.GetRasterBand(index).SetDescription(name)
    dataset = None
    return path


def test_kinds(picking: Any, tmp_path: Path) -> None:
    assert picking.kind_of(layer(SAMPLE_S2, "scene")) == "s2"
    assert picking.kind_of(layer(SAMPLE_S1, "ROIs_s1_19")) == "s1"  # "s1" in the name
    two_bands = write_subset(SAMPLE_S1, tmp_path / "radar.tif")
    assert picking.kind_of(layer(two_bands, "radar")) == "other"
    assert picking.kind_of(layer(named_bands(two_bands, ["VV", "VH"]), "radar")) == "s1"  # VV/VH band names
    assert picking.kind_of(layer(write_subset(SAMPLE_S2, tmp_path / "rgb.tif", bands=[4, 3, 2]), "rgb")) == "rgb"


def test_dbcr_picks_the_active_sentinel2_and_an_overlapping_sentinel1(picking: Any, tmp_path: Path) -> None:
    s2, s1 = layer(SAMPLE_S2, "first"), layer(SAMPLE_S1, "s1")
    other = layer(write_subset(SAMPLE_S2, tmp_path / "second.tif"), "second")
    away = layer(write_subset(SAMPLE_S1, tmp_path / "s1-away.tif", shift_m=50_000), "s1 away")
    picked = picking.pick_inputs("dbcr", [away, s2, other, s1], active=other)
    assert picked.optical == [other] and picked.sar is s1
    assert picked.describe() == "Optical: second · Sentinel-1: s1"
    assert picking.pick_inputs("dbcr", [s2, other, s1]).optical == [s2]


def test_missing_layers_are_named(picking: Any) -> None:
    with pytest.raises(picking.PickError, match="DB-CR needs a Sentinel-1 image"):
        picking.pick_inputs("dbcr", [layer(SAMPLE_S2, "s2")])
    with pytest.raises(picking.PickError, match=r"DiffCR needs a Sentinel-2 image \(12 or 13 bands\)"):
        picking.pick_inputs("diffcr", [layer(SAMPLE_S1, "s1")])


def test_diffcr_takes_as_many_dates_as_the_model_and_radar_if_it_wants(picking: Any, tmp_path: Path) -> None:
    dates = [
        layer(SAMPLE_S2, "d1"),
        *(layer(write_subset(SAMPLE_S2, tmp_path / f"d{i}.tif"), f"d{i}") for i in (2, 3, 4)),
    ]
    s1 = layer(SAMPLE_S1, "s1")
    assert [x.name() for x in picking.pick_inputs("diffcr", [*dates, s1], dates=3).optical] == ["d1", "d2", "d3"]
    assert picking.pick_inputs("diffcr", [*dates, s1], dates=1, wants_sar=False).sar is None
    assert picking.pick_inputs("diffcr", [*dates, s1], dates=1, wants_sar=True).sar is s1
    assert picking.pick_inputs("diffcr", dates, dates=1).sar is None  # unknown model: radar only when present


def test_de_prefers_rgb_and_never_radar(picking: Any, tmp_path: Path) -> None:
    rgb = layer(write_subset(SAMPLE_S2, tmp_path / "rgb.tif", bands=[4, 3, 2]), "rgb")
    picked = picking.pick_inputs("de", [layer(SAMPLE_S2, "s2"), layer(SAMPLE_S1, "s1"), rgb])
    assert picked.optical == [rgb] and picked.sar is None
