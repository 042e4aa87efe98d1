"""``cloudremoval:dbcr`` run the way analysts and scripts run it: through ``qgis_process`` and a model file.

Runs against the stand-in backend need nothing but QGIS; runs against the real backend need the shipped model
(``needs_model``) and check the output raster with GDAL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from osgeo import gdal
from qgis_support import (
    DATA,
    FAKE_BACKEND,
    SAMPLE_S1,
    SAMPLE_S2,
    needs_model,
    raster_grid,
    recorded_call,
    write_subset,
)

MODEL_FILE = DATA / "clip_then_dbcr.model3"


def s2_extent(left_px: int, right_px: int, top_px: int, bottom_px: int) -> tuple[float, float, float, float]:
    """An extent on the sample's pixel grid: (xmin, xmax, ymin, ymax) from pixel columns and rows."""
    x0, dx, _, y0, _, dy = gdal.Open(str(SAMPLE_S2)).GetGeoTransform()
    return x0 + left_px * dx, x0 + right_px * dx, y0 + bottom_px * dy, y0 + top_px * dy


CLIP = s2_extent(30, 230, 40, 200)  # 200 x 160 pixels: not a whole number of tiles
CLIP_ARGUMENT = "{},{},{},{} [EPSG:32631]".format(*CLIP)


def dbcr(qgis_process: Any, output: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return qgis_process(
        "run",
        "cloudremoval:dbcr",
        "--",
        f"OPTICAL={SAMPLE_S2}",
        f"SAR={SAMPLE_S1}",
        f"OUTPUT={output}",
        *extra,
        env=env,
    )


def test_command_line_reaches_the_backend(qgis_process: Any, tmp_path: Path) -> None:
    record = tmp_path / "call.json"
    env = {"CLOUD_REMOVAL_PYTHON": str(FAKE_BACKEND), "FAKE_BACKEND_RECORD": str(record)}
    result = dbcr(qgis_process, tmp_path / "out.tif", "NFE=3", "DEVICE=1", "OVERLAP=16", env=env)
    assert result.returncode == 0, result.text
    arguments, job = recorded_call(record)
    assert arguments[:2] == ["run", "--job"] and arguments[3:] == ["--events"]
    assert job == {
        "algorithm": "dbcr",
        "optical": str(SAMPLE_S2),
        "sar": str(SAMPLE_S1),
        "nfe": 3,
        "model": "dbcr-lite",
        "device": "cpu",
        "overlap": 16,
        "runtime": "torch",
        "keep_clear": True,
        "cloud_threshold": 0.4,
        "adapt": 0,
        "cog": False,
        "output": str(tmp_path / "out.tif"),
    }  # no tile_size: 0 means the model's own


def test_model_file_chains_clips_into_dbcr(qgis_process: Any, tmp_path: Path) -> None:
    record = tmp_path / "call.json"
    env = {"CLOUD_REMOVAL_PYTHON": str(FAKE_BACKEND), "FAKE_BACKEND_RECORD": str(record)}
    output = tmp_path / "model-out.tif"
    result = qgis_process(
        "run", str(MODEL_FILE), "--", f"optical={SAMPLE_S2}", f"sar={SAMPLE_S1}", f"extent={CLIP_ARGUMENT}",
        f"dbcr:cloud_free={output}", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.text
    clipped = Path(recorded_call(record)[1]["optical"])
    assert clipped != SAMPLE_S2 and clipped.suffix == ".tif"
    assert output.is_file()


def test_unreadable_input_is_refused_before_the_backend_runs(qgis_process: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tif"
    broken.write_text("this is not a raster")
    output = tmp_path / "out.tif"
    result = qgis_process(
        "run", "cloudremoval:dbcr", "--", f"OPTICAL={broken}", f"SAR={SAMPLE_S1}", f"OUTPUT={output}",
        env={"CLOUD_REMOVAL_PYTHON": str(FAKE_BACKEND)},
    )  # fmt: skip
    assert result.returncode != 0
    assert "Could not load source layer for OPTICAL" in result.text
    assert not output.exists()


def test_missing_backend_says_how_to_set_it_up(qgis_process: Any, tmp_path: Path) -> None:
    output = tmp_path / "out.tif"
    result = dbcr(qgis_process, output, env={"CLOUD_REMOVAL_PYTHON": str(tmp_path / "nowhere" / "python")})
    assert result.returncode != 0
    assert "The cloud-removal backend is not set up" in result.text
    assert "click “Set up backend…”" in result.text
    assert "run `make` once in the plugin folder" in result.text
    assert "Traceback" not in result.text
    assert not output.exists()


@needs_model
def test_dbcr_on_the_sample_keeps_the_sentinel2_grid(qgis_process: Any, tmp_path: Path) -> None:
    output = tmp_path / "cloud-free.tif"
    result = dbcr(qgis_process, output, "--json")
    assert result.returncode == 0, result.text
    assert raster_grid(output) == raster_grid(SAMPLE_S2)
    assert not Path(f"{output}.partial").exists()
    dataset = gdal.Open(str(output))
    assert all(dataset.GetRasterBand(index).Checksum() != 0 for index in range(1, dataset.RasterCount + 1))


@needs_model
def test_model_file_output_is_on_the_clipped_grid(qgis_process: Any, tmp_path: Path) -> None:
    output = tmp_path / "model-out.tif"
    result = qgis_process(
        "run", str(MODEL_FILE), "--", f"optical={SAMPLE_S2}", f"sar={SAMPLE_S1}", f"extent={CLIP_ARGUMENT}",
        f"dbcr:cloud_free={output}",
    )  # fmt: skip
    assert result.returncode == 0, result.text
    gdal.Translate(str(tmp_path / "expected.tif"), str(SAMPLE_S2), projWin=[CLIP[0], CLIP[3], CLIP[1], CLIP[2]])
    grid = raster_grid(output)
    assert grid == raster_grid(tmp_path / "expected.tif")
    assert grid["size"] == (200, 160)


@needs_model
@pytest.mark.parametrize(
    ("make_input", "expected"),
    [
        (lambda tmp: ("OPTICAL", write_subset(SAMPLE_S2, tmp / "s2-3bands.tif", bands=[2, 3, 4])), "band"),
        (lambda tmp: ("SAR", write_subset(SAMPLE_S1, tmp / "s1-vv.tif", bands=[1])), "band"),
        (lambda tmp: ("SAR", write_subset(SAMPLE_S1, tmp / "s1-away.tif", shift_m=50_000)), "overlap"),
    ],
    ids=["optical-3-bands", "sar-1-band", "no-overlap"],
)
def test_bad_inputs_end_in_a_sentence_and_no_file(
    qgis_process: Any, tmp_path: Path, make_input: Any, expected: str
) -> None:
    inputs = {"OPTICAL": SAMPLE_S2, "SAR": SAMPLE_S1}
    key, path = make_input(tmp_path)
    inputs[key] = path
    output = tmp_path / "out.tif"
    result = qgis_process(
        "run", "cloudremoval:dbcr", "--", *(f"{k}={v}" for k, v in inputs.items()), f"OUTPUT={output}"
    )
    assert result.returncode != 0
    assert expected in result.text.lower()
    assert "Traceback" not in result.text
    assert not output.exists() and not Path(f"{output}.partial").exists()


CHAIN_MODEL = DATA / "clip_dbcr_ndvi.model3"


def run_chain(qgis_process: Any, tmp_path: Path, env: dict[str, str] | None = None) -> tuple[Any, Path, Path]:
    cloud_free, ndvi = tmp_path / "cloud-free.tif", tmp_path / "ndvi.tif"
    result = qgis_process(
        "run", str(CHAIN_MODEL), "--", f"optical={SAMPLE_S2}", f"sar={SAMPLE_S1}", f"extent={CLIP_ARGUMENT}",
        f"dbcr:cloud_free={cloud_free}", f"ndvi:ndvi={ndvi}", env=env,
    )  # fmt: skip
    return result, cloud_free, ndvi


def check_ndvi(ndvi: Path) -> None:
    grid = raster_grid(ndvi)
    assert (grid["size"], grid["bands"], grid["dtype"]) == ((200, 160), 1, "Float32")
    dataset = gdal.Open(str(ndvi))  # held: a band outliving its dataset crashes GDAL
    low, high = dataset.GetRasterBand(1).ComputeRasterMinMax(False)
    assert -1.0 <= low <= high <= 1.0


def test_model_chain_clip_dbcr_raster_calculator(qgis_process: Any, tmp_path: Path) -> None:
    env = {"CLOUD_REMOVAL_PYTHON": str(FAKE_BACKEND), "FAKE_BACKEND_SCENARIO": "copy"}  # DB-CR output = its input
    result, cloud_free, ndvi = run_chain(qgis_process, tmp_path, env)
    assert result.returncode == 0, result.text
    assert raster_grid(cloud_free)["size"] == (200, 160)
    check_ndvi(ndvi)


@needs_model
def test_model_chain_with_the_real_backend(qgis_process: Any, tmp_path: Path) -> None:
    result, cloud_free, ndvi = run_chain(qgis_process, tmp_path)
    assert result.returncode == 0, result.text
    assert raster_grid(cloud_free)["bands"] == 13
    check_ndvi(ndvi)
