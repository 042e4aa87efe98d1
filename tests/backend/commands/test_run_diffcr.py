"""DiffCR end to end: one or more cloudy dates (+ S1) through the real backend, with a tiny random network."""

import io
import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.cli import main
from backend.job import Job
from backend.protocol import EXIT_OK, EXIT_USER_ERROR, decode_event
from backend.reporter import Reporter
from backend.worker import execute

SIZE = (40, 48)  # rows, cols: 4 tiles of 32 px with 8 px overlap


def run(job):
    out = io.StringIO()
    code = execute(job, Reporter(events=True, out=out))
    return code, [decode_event(line) for line in out.getvalue().splitlines() if line.strip()]


@pytest.fixture
def scene(tmp_path, kit):
    """Two cloudy L1C dates on one grid, an L2A date, a date on a shifted grid, and S1 in dB."""
    height, width = SIZE
    paths = {
        "date1": kit.write_raster(tmp_path / "d1.tif", kit.s2_dn(13, height, width, seed=1)),
        "date2": kit.write_raster(tmp_path / "d2.tif", kit.s2_dn(13, height, width, seed=2)),
        "l2a": kit.write_raster(tmp_path / "l2a.tif", kit.s2_dn(12, height, width, seed=3)),
        "s1": kit.write_raster(tmp_path / "s1.tif", kit.s1_db(height, width)),
        # 20 m pixels starting 100 m west: covers date 1 with a margin, on another grid.
        "shifted": kit.write_raster(
            tmp_path / "shift.tif", kit.s2_dn(13, 30, 30, seed=4), transform=from_origin(499900.0, 5000050.0, 20, 20)
        ),
        "plain": kit.write_raster(tmp_path / "plain.tif", kit.s2_dn(13, 30, 30, seed=5), crs=None),
    }
    return paths


def diffcr_job(tmp_path, model, optical, **changes):
    values = {
        "algorithm": "diffcr", "optical": optical, "model": model, "output": str(tmp_path / "out.tif"),
        "nfe": 2, "overlap": 8, "device": "cpu", "threads": 1,
    }  # fmt: skip
    values.update(changes)
    return Job.from_dict(values)


def test_two_dates_and_s1_keep_the_first_dates_grid_dtype_and_bands(tmp_path, tiny_models, scene):
    job = diffcr_job(tmp_path, tiny_models["tiny-diffcr"], [scene["date1"], scene["date2"]], sar=scene["s1"])
    code, events = run(job)
    assert code == EXIT_OK, events[-1].data
    assert events[-1].get("stats")["dates"] == 2
    with rasterio.open(job.output) as out, rasterio.open(scene["date1"]) as first:
        assert (out.count, out.dtypes[0], out.shape) == (13, "uint16", first.shape)
        assert out.crs == first.crs and out.transform == first.transform
        first_values = out.read()
    assert run(job)[0] == EXIT_OK  # a rerun repeats the position-seeded noise exactly
    with rasterio.open(job.output) as out:
        np.testing.assert_array_equal(out.read(), first_values)


def test_one_date_is_repeated_and_a_date_on_another_grid_is_warped(tmp_path, tiny_models, scene):
    code, events = run(diffcr_job(tmp_path, tiny_models["tiny-diffcr"], [scene["date1"]], sar=scene["s1"]))
    assert code == EXIT_OK
    job = diffcr_job(tmp_path, tiny_models["tiny-diffcr"], [scene["date1"], scene["shifted"]], sar=scene["s1"])
    code, events = run(job)
    assert code == EXIT_OK, events[-1].data
    assert any("warped onto the first date's grid" in str(e.get("message")) for e in events if e.kind == "log")


@pytest.mark.parametrize(
    ("second", "sentence"),
    [
        ("l2a", "Optical date 2 ({path}) has 12 bands but the first date has 13; give every date with the same bands"),
        ("plain", "without a CRS on both it cannot be placed on the first"),
    ],
)
def test_dates_that_do_not_fit_are_refused(tmp_path, tiny_models, scene, second, sentence, capsys):
    args = [
        "run", "diffcr", "--optical", scene["date1"], "--optical", scene[second], "--sar", scene["s1"],
        "--model", tiny_models["tiny-diffcr"], "--output", str(tmp_path / "out.tif"), "--events", "--threads", "1",
    ]  # fmt: skip
    assert main(args) == EXIT_USER_ERROR
    error = decode_event(capsys.readouterr().out.strip().splitlines()[-1])
    assert error.kind == "error" and error.get("code") == "bad_input"
    assert sentence.format(path=scene[second]) in error.get("message")
    assert not (tmp_path / "out.tif").exists()


def test_date_count_and_sar_follow_the_card(tmp_path, tiny_models, scene):
    three = [scene["date1"], scene["date2"], scene["date2"]]
    code, events = run(diffcr_job(tmp_path, tiny_models["tiny-diffcr"], three, sar=scene["s1"]))
    assert code == EXIT_USER_ERROR
    assert "uses 2 cloudy dates; give 2 optical rasters" in events[-1].get("message")
    code, events = run(diffcr_job(tmp_path, tiny_models["tiny-diffcr"], scene["date1"]))
    assert code == EXIT_USER_ERROR
    assert events[-1].get("message") == "DiffCR needs a Sentinel-1 layer with VV and VH; none was given"
    code, events = run(diffcr_job(tmp_path, tiny_models["tiny-diffcr"], scene["date1"], sar=scene["s1"], nfe=1))
    assert code == EXIT_USER_ERROR
    assert events[-1].get("message").startswith("DiffCR needs at least 2 steps (NFE)")
    code, events = run(diffcr_job(tmp_path, tiny_models["tiny-diffcr-nosar"], scene["date1"], sar=scene["s1"]))
    assert code == EXIT_OK
    warnings = [e.get("message") for e in events if e.kind == "log" and e.get("level") == "warning"]
    assert any("uses no SAR; the S1 layer is ignored" in message for message in warnings)


def test_json_job_takes_a_list_of_dates(tmp_path, tiny_models, scene, capsys):
    job = {
        "algorithm": "diffcr", "optical": [scene["date1"], scene["date2"]], "sar": scene["s1"], "nfe": 2,
        "model": tiny_models["tiny-diffcr"], "output": str(tmp_path / "out.tif"), "threads": 1, "overlap": 8,
    }  # fmt: skip
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    assert main(["run", "--job", str(path), "--events"]) == EXIT_OK
    finished = decode_event(capsys.readouterr().out.strip().splitlines()[-1])
    assert finished.get("stats")["dates"] == 2
    parsed = Job.from_dict(job)
    assert parsed.extra_optical == (scene["date2"],)
    assert Job.from_dict(parsed.to_dict()) == parsed


# Clear ground and cloud of the bundled sample (median DN of its clear and cloudy pixels, s2cloudless).
GROUND = np.array([1514, 1262, 1250, 1003, 1388, 2908, 3587, 3292, 3982, 426, 10, 2387, 1143], float)[:, None, None]
CLOUD = np.array([2278, 2088, 2064, 1988, 2195, 3366, 3999, 3645, 4350, 515, 12, 3128, 2067], float)[:, None, None]


@pytest.fixture(scope="module")
def temporal_model(tmp_path_factory):
    """An untrained tiny optical-only DiffCR with a temporal-fill prior: it returns the temporal fill."""
    import dataclasses

    from models.card import ModelCard, save_weights
    from models.networks.diffcr import DiffCRConfig, DiffCRNet

    config = DiffCRConfig(bands=13, dates=3, width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), emb_dim=16, time_dim=32,
                          prior=True)  # fmt: skip
    card = ModelCard(
        name="tiny-temporal", algorithm="diffcr", config=dataclasses.asdict(config), sar_bands=(), tile_size=32,
        default_nfe=2, x0_prior="temporal_fill",
        schedule={"name": "sigmoid", "n_timestep": 1000, "thresholding": {"ratio": 0.995, "max_val": 1.0}},
    )  # fmt: skip
    path = tmp_path_factory.mktemp("temporal") / "tiny-temporal.safetensors"
    save_weights(path, DiffCRNet(config).state_dict(), card)
    return str(path)


@pytest.fixture
def cloud_and_later_date(tmp_path, kit):
    """A first date with a cloud over a dark field, and a later clear date on a coarser, shifted grid that shows it.

    The field is x 500180-500260 m, y 4999770-4999850 m: first-date rows 15-23, cols 18-26; later-date rows 10-14,
    cols 14-18 (20 m pixels from x 499900, y 5000050).
    """
    height, width = SIZE
    first = np.broadcast_to(GROUND, (13, height, width)).copy()
    first[:, 8:30, 10:36] = CLOUD
    later = np.broadcast_to(GROUND, (13, 30, 30)).copy()
    later[:, 10:14, 14:18] *= 0.7
    return (
        kit.write_raster(tmp_path / "first.tif", first.astype(np.uint16)),
        kit.write_raster(
            tmp_path / "later.tif", later.astype(np.uint16), transform=from_origin(499900.0, 5000050.0, 20, 20)
        ),
    )


def test_a_temporal_model_needs_no_s1_and_fills_the_cloud_from_a_later_date_on_another_grid(
    tmp_path, temporal_model, cloud_and_later_date
):
    first, later = cloud_and_later_date
    job = diffcr_job(tmp_path, temporal_model, [first, later])
    code, events = run(job)
    assert code == EXIT_OK, events[-1].data
    messages = [str(e.get("message")) for e in events if e.kind == "log"]
    assert any("2 of the model's 3 dates given" in message for message in messages)
    assert any("warped onto the first date's grid" in message for message in messages)
    with rasterio.open(job.output) as out:
        restored = out.read().astype(float)
    np.testing.assert_allclose(restored[:, 19, 22], 0.7 * GROUND[:, 0, 0], rtol=0.02, atol=2)  # the field
    np.testing.assert_allclose(restored[:, 10, 12], GROUND[:, 0, 0], rtol=0.02, atol=2)  # ground around it
    code, events = run(diffcr_job(tmp_path, temporal_model, [first]))  # one date: the local fill, no field
    assert code == EXIT_OK
    with rasterio.open(job.output) as out:
        np.testing.assert_allclose(out.read()[:, 19, 22].astype(float), GROUND[:, 0, 0], rtol=0.02, atol=2)
