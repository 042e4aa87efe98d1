from pathlib import Path

import rasterio

from backend.job import Job
from backend.reporter import Reporter
from backend.worker import execute
from models.card import read_card

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
OPTICAL = str(SAMPLE / "ROIs1868_summer_s2_cloudy_19_p30.tif")
SAR = str(SAMPLE / "ROIs1868_summer_s1_19_p30.tif")


def _events(capsys):
    from backend.protocol import decode_event

    return [decode_event(line) for line in capsys.readouterr().out.splitlines()]


def test_adapted_run_writes_output_and_keeps_the_adapted_model(tmp_path, tiny_model, capsys):
    kept = tmp_path / "adapted.safetensors"
    job = Job(
        algorithm="dbcr",
        optical=OPTICAL,
        sar=SAR,
        model=tiny_model,
        output=str(tmp_path / "out.tif"),
        device="cpu",
        threads=1,
        tile_size=128,
        adapt=2,
        save_adapted=str(kept),
    )
    assert execute(job, Reporter(events=True)) == 0
    events = _events(capsys)
    assert [e.get("done") for e in events if e.kind == "progress" and e.get("phase") == "adapt"] == [1, 2]
    assert any("Adapting" in (e.get("message") or "") for e in events if e.kind == "log")
    with rasterio.open(job.output) as out:
        assert out.count == 13
    card = read_card(kept)
    assert card.name == "adapted" and card.training["adapted_to_scene"]["steps"] == 2


def _rgb_scene(kit, path):
    """A 128 px 8-bit RGB image, its top rows bright white cloud: the brightness rule's input."""
    rgb = (kit.s2_dn(3, 128, 128) // 40).astype("uint8")
    rgb[:, :24] = 240
    return kit.write_raster(path, rgb, crs=None)


def test_de_adapts_over_its_frozen_reference_on_an_rgb_image(tmp_path, tiny_models, capsys, kit):
    kept = tmp_path / "de-adapted.safetensors"
    job = Job(
        algorithm="de",
        optical=_rgb_scene(kit, tmp_path / "rgb.tif"),
        model=tiny_models["tiny-de"],
        output=str(tmp_path / "out.tif"),
        device="cpu",
        threads=1,
        tile_size=64,
        nfe=2,
        adapt=2,
        save_adapted=str(kept),
    )
    assert execute(job, Reporter(events=True)) == 0
    events = _events(capsys)
    assert [e.get("done") for e in events if e.kind == "progress" and e.get("phase") == "adapt"] == [1, 2]
    assert read_card(kept).algorithm == "de"


def test_diffcr_adapts_and_runs(tmp_path, tiny_models, capsys):
    job = Job(
        algorithm="diffcr",
        optical=OPTICAL,
        sar=SAR,
        model=tiny_models["tiny-diffcr"],
        output=str(tmp_path / "out.tif"),
        device="cpu",
        threads=1,
        tile_size=64,
        nfe=3,
        adapt=1,
    )
    assert execute(job, Reporter(events=True)) == 0
    with rasterio.open(job.output) as out:
        assert out.count == 13


def test_a_scene_too_cloudy_to_learn_from_is_a_sentence(tmp_path, tiny_models, capsys, kit):
    white = kit.write_raster(tmp_path / "white.tif", (kit.s2_dn(3, 64, 64) * 0 + 240).astype("uint8"), crs=None)
    job = Job(
        algorithm="de",
        optical=white,
        model=tiny_models["tiny-de"],
        output=str(tmp_path / "out.tif"),
        device="cpu",
        threads=1,
        adapt=2,
    )
    assert execute(job, Reporter(events=True)) == 2
    error = _events(capsys)[-1]
    assert error.kind == "error" and "adapt" in error.get("message").lower()
    assert not Path(job.output).exists()


def test_the_crop_shrinks_to_fit_a_small_scene():
    import numpy as np

    from backend.scene_adaptation import fitted
    from models.training.scene_finetune import AdaptSettings, Scene

    def scene(side):
        mask = np.zeros((side, side), bool)
        return Scene(np.zeros((3, side, side)), None, np.zeros((side, side)), mask, ~mask)

    assert fitted(AdaptSettings(crop=96), scene(64)).crop == 64
    assert fitted(AdaptSettings(crop=96), scene(120)).crop == 96
    assert fitted(AdaptSettings(crop=96), scene(20)).crop == 32  # then "no clear area", said as a sentence
