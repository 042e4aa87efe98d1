"""DE end to end: RGB images, 8- or 16-bit, with or without georeferencing (RICE PNGs), through the real backend."""

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

from backend.cli import main
from backend.job import Job
from backend.optical_scale import AUTO_SCALE_PERCENTILE
from backend.protocol import EXIT_OK, EXIT_USER_ERROR, decode_event
from backend.reporter import Reporter
from backend.worker import execute

RICE2 = Path(__file__).resolve().parents[4] / "shared" / "data" / "rice2"


def run(job):
    out = io.StringIO()
    code = execute(job, Reporter(events=True, out=out))
    return code, [decode_event(line) for line in out.getvalue().splitlines() if line.strip()]


def de_job(tmp_path, model, optical, **changes):
    values = {
        "algorithm": "de", "optical": optical, "model": model, "output": str(tmp_path / "out.tif"),
        "nfe": 2, "overlap": 8, "device": "cpu", "threads": 1,
    }  # fmt: skip
    values.update(changes)
    return Job(**values)


def open_quietly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


@pytest.fixture
def rice_png(tmp_path):
    """A 48 x 40 crop of a real RICE2 cloudy image, saved as a plain PNG (no georeferencing)."""
    source = RICE2 / "100_real_A.png"
    if not source.exists():
        pytest.skip(f"RICE2 sample not found in {RICE2}")
    path = tmp_path / "rice.png"
    Image.open(source).convert("RGB").crop((100, 60, 148, 100)).save(path)
    return str(path)


def test_rice_png_gives_an_ungeoreferenced_8bit_geotiff(tmp_path, tiny_models, rice_png):
    job = de_job(tmp_path, tiny_models["tiny-de"], rice_png)
    code, events = run(job)
    assert code == EXIT_OK, events[-1].data
    assert not [e for e in events if e.kind == "log" and e.get("level") == "warning"]
    with open_quietly(job.output) as out, open_quietly(rice_png) as source:
        assert (out.count, out.dtypes[0], out.shape, out.driver) == (3, "uint8", source.shape, "GTiff")
        assert out.crs is None and out.transform.is_identity
        assert out.descriptions == ("B4", "B3", "B2")
        assert [c.name for c in out.colorinterp] == ["red", "green", "blue"]
        first = out.read()
    # No geotransform was written at all (not an identity one): GIS software shows it as it shows the PNG.
    with pytest.warns(NotGeoreferencedWarning), rasterio.open(job.output):
        pass
    assert run(job)[0] == EXIT_OK
    with open_quietly(job.output) as out:
        np.testing.assert_array_equal(out.read(), first)  # position-seeded noise: a rerun is identical


def test_16bit_rgb_is_scaled_to_the_image_and_written_back_16bit(tmp_path, tiny_models, kit):
    rng = np.random.default_rng(0)
    data = rng.integers(200, 4000, size=(3, 40, 40)).astype(np.uint16)
    path = kit.write_raster(tmp_path / "rgb16.tif", data)
    job = de_job(tmp_path, tiny_models["tiny-de"], path)
    code, events = run(job)
    assert code == EXIT_OK, events[-1].data
    stats = events[-1].get("stats")
    assert stats["optical_scale"] == pytest.approx(np.percentile(data.astype(np.float32), AUTO_SCALE_PERCENTILE))
    with rasterio.open(job.output) as out:
        assert (out.count, out.dtypes[0], out.crs, out.transform) == (3, "uint16", "EPSG:32631", kit.S2_TRANSFORM)
        assert out.tags()["CLOUD_REMOVAL_OPTICAL_SCALE"] == f"{stats['optical_scale']:g}"
    code, events = run(de_job(tmp_path, tiny_models["tiny-de"], path, optical_scale=10000.0))
    assert code == EXIT_OK and events[-1].get("stats")["optical_scale"] == 10000.0


def test_rgbn_feeds_an_rgb_model_and_leaves_nir_out(tmp_path, tiny_models, kit):
    path = kit.write_raster(tmp_path / "rgbn.tif", np.full((4, 32, 32), 900, np.uint16))
    code, events = run(de_job(tmp_path, tiny_models["tiny-de"], path))
    assert code == EXIT_OK
    assert any("does not restore band B8" in str(e.get("message")) for e in events if e.kind == "log")
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.count == 3


def test_rgba_alpha_is_a_mask_not_a_band(tmp_path, tiny_models, kit):
    data = np.full((4, 32, 32), 90, np.uint8)
    data[3, :8, :8] = 0  # transparent corner
    path = kit.write_raster(tmp_path / "rgba.tif", data)  # GDAL reads 4 x 8-bit GeoTIFF bands as RGBA
    code, events = run(de_job(tmp_path, tiny_models["tiny-de"], path))
    assert code == EXIT_OK, events[-1].data
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.count == 3
        mask = out.dataset_mask()
        assert not mask[:8, :8].any() and mask[8:, 8:].all()


def test_a_two_band_image_is_refused_with_a_sentence(tmp_path, tiny_models, kit, capsys):
    path = kit.write_raster(tmp_path / "two.tif", np.full((2, 32, 32), 90, np.uint8))
    args = ["run", "de", "--optical", path, "--model", tiny_models["tiny-de"], "--output", str(tmp_path / "o.tif")]
    assert main([*args, "--events"]) == EXIT_USER_ERROR
    error = decode_event(capsys.readouterr().out.strip().splitlines()[-1])
    assert error.get("code") == "bad_input"
    assert error.get("message") == (
        "Optical layer has 2 bands; DE model tiny-de needs 3 bands (B4, B3, B2 in this order): an RGB image"
    )
    assert not (tmp_path / "o.tif").exists()


def test_a_de_model_without_its_reference_says_what_to_do(tmp_path, tiny_models, kit):
    from models.card import read_weights, save_weights

    state, card = read_weights(tiny_models["tiny-de"])
    orphan = tmp_path / "orphan.safetensors"
    save_weights(orphan, state, card.replace(reference_model=None))
    path = kit.write_raster(tmp_path / "rgb.tif", np.full((3, 32, 32), 90, np.uint8))
    code, events = run(de_job(tmp_path, str(orphan), path))
    assert code == EXIT_USER_ERROR
    assert events[-1].get("code") == "model" and "names no reference network" in events[-1].get("message")
