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


def _logs(events):
    return [(e.get("level"), e.get("message") or "") for e in events if e.kind == "log"]


def _helpful_check(monkeypatch):
    """The held-back check scores the original (first) 20 dB and the tuned network (second) 21 dB."""
    from models.training import scene_finetune

    scores = iter([20.0, 21.0])
    monkeypatch.setattr(scene_finetune, "held_back_psnr", lambda *args, **kwargs: next(scores))


def test_adapted_run_writes_output_and_keeps_the_adapted_model(tmp_path, tiny_model, capsys, monkeypatch):
    _helpful_check(monkeypatch)
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
    assert any("Adapting" in message for _, message in _logs(events))
    helped = "Adaptation helped on held-back clear ground (20.00 dB -> 21.00 dB): running the adapted model"
    assert ("info", helped) in _logs(events)
    with rasterio.open(job.output) as out:
        assert out.count == 13
    card = read_card(kept)
    assert card.name == "adapted" and card.training["adapted_to_scene"]["steps"] == 2


def test_an_adaptation_that_did_not_help_runs_the_original_and_is_not_saved(
    tmp_path, tiny_model, capsys, monkeypatch, ruinous_step
):
    import backend.scene_adaptation
    from models.training import scene_finetune

    monkeypatch.setitem(scene_finetune.STEPS, "dbcr", ruinous_step)
    ran = []

    def spy(network, *args):
        result = scene_finetune.adapt_network(network, *args)
        ran.append((network, result))
        return result

    monkeypatch.setattr(backend.scene_adaptation, "adapt_network", spy)
    kept = tmp_path / "adapted.safetensors"
    job = Job(
        algorithm="dbcr", optical=OPTICAL, sar=SAR, model=tiny_model, output=str(tmp_path / "out.tif"), device="cpu",
        threads=1, tile_size=128, adapt=2, save_adapted=str(kept),
    )  # fmt: skip
    assert execute(job, Reporter(events=True)) == 0
    logs = _logs(_events(capsys))
    (message,) = [m for level, m in logs if level == "warning" and m.startswith("Adaptation did not help")]
    assert message.startswith("Adaptation did not help on held-back clear ground (")
    assert message.endswith("): running tiny as it was")
    before, after = (float(score) for score in message.split("(")[1].split(")")[0].replace(" dB", "").split(" -> "))
    assert after < before
    ((original, result),) = ran
    assert not result.adapted and result.network is original
    assert any(level == "warning" and m.startswith("Not saving the adapted weights") for level, m in logs)
    assert not kept.exists() and Path(job.output).exists()


def _rgb_scene(kit, path):
    """A 128 px 8-bit RGB image, its top rows bright white cloud: the brightness rule's input."""
    rgb = (kit.s2_dn(3, 128, 128) // 40).astype("uint8")
    rgb[:, :24] = 240
    return kit.write_raster(path, rgb, crs=None)


def test_de_adapts_over_its_frozen_reference_on_an_rgb_image(tmp_path, tiny_models, capsys, kit, monkeypatch):
    _helpful_check(monkeypatch)
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


def test_a_cloud_free_scene_is_not_adapted_and_comes_back_as_it_is(tmp_path, tiny_models, capsys):
    import numpy as np

    clear = SAMPLE / "rice2_249_clear.png"  # the RGB detector flags none of it (tests/models/test_rgb_cloud_mask.py)
    job = Job(
        algorithm="de", optical=str(clear), model=tiny_models["tiny-de"], output=str(tmp_path / "out.tif"),
        device="cpu", threads=1, tile_size=64, nfe=2, adapt=2, save_adapted=str(tmp_path / "kept.safetensors"),
    )  # fmt: skip
    assert execute(job, Reporter(events=True)) == 0
    events = _events(capsys)
    assert not [e for e in events if e.kind == "progress" and e.get("phase") == "adapt"]
    assert ("info", "No cloud found in the scene: tiny-de is not adapted; the scene comes back as it is") in _logs(
        events
    )
    assert not (tmp_path / "kept.safetensors").exists()
    with rasterio.open(clear) as source, rasterio.open(job.output) as out:
        np.testing.assert_array_equal(out.read(), source.read())


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
    assert "only 0 % of the scene is clear ground, and adaptation needs at least 10 %" in error.get("message")
    assert not Path(job.output).exists()


def test_the_crop_shrinks_to_fit_a_small_scene():
    import numpy as np

    from backend.scene_adaptation import fitted
    from models.training.scene_finetune import AdaptSettings, Scene

    def scene(side):
        mask = np.zeros((side, side), bool)
        return Scene(np.zeros((3, side, side)), None, np.zeros((side, side)), mask, ~mask)

    def crops(side):
        settings = fitted(AdaptSettings(crop=96, check_crop=64), scene(side))
        return settings.crop, settings.check_crop

    # The training crop leaves room for a held-back crop of at least 32 px beside it.
    assert crops(256) == (96, 64)
    assert crops(160) == (96, 64)
    assert crops(128) == (96, 32)
    assert crops(120) == (64, 32)
    assert crops(64) == (32, 32)
    assert crops(20) == (32, 32)  # then "no clear area", said as a sentence
