import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from backend.commands.eval import COVER_BINS, EvaluationError, cover_bin, evaluate_folder, main
from models.baselines import BASELINES, CLOUDY_INPUT, NAIVE_FILL
from models.datasets.rasters import read_reflectance

SIZE = 32
TRANSFORM = Affine(10, 0, 500000, 0, -10, 5000000)


def _write_tif(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff",
        width=array.shape[2],
        height=array.shape[1],
        count=array.shape[0],
        dtype=array.dtype,
        crs="EPSG:32631",
        transform=TRANSFORM,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def _scene(seed: int) -> np.ndarray:
    """A clear 13-band L1C-like scene in DN: vegetation-like spectrum with texture."""
    rng = np.random.default_rng(seed)
    spectrum = np.array([1200, 900, 700, 500, 900, 2000, 2400, 2500, 2700, 900, 10, 1600, 800], np.float64)
    texture = 1.0 + 0.2 * rng.standard_normal((SIZE, SIZE))
    return (spectrum[:, None, None] * texture).clip(1, 10000).astype(np.uint16)


def _s2_folder(root: Path, sar: bool = False) -> Path:
    """Two images: one clear, one with a thick bright cloud over its left half."""
    for index, name in enumerate(("clear.tif", "half.tif")):
        target = _scene(index)
        cloudy = target.copy()
        if name == "half.tif":
            cloudy[:, :, : SIZE // 2] = 6000
            cloudy[10, :, : SIZE // 2] = 300  # cirrus band high too
        _write_tif(root / "target" / name, target)
        _write_tif(root / "cloudy" / name, cloudy)
        if sar:
            _write_tif(root / "sar" / name, np.full((2, SIZE, SIZE), -15.0, np.float32))
    return root


def _fake_target(data: Path):
    def predict(cloudy: Path, sar: Path | None) -> np.ndarray:
        return read_reflectance(data / "target" / cloudy.name)

    return predict


def test_prediction_equal_to_target_scores_perfectly_and_baselines_are_beside_it(tmp_path):
    data = _s2_folder(tmp_path / "data")
    report = evaluate_folder(data, _fake_target(data), tmp_path / "out", method="oracle")
    assert report.columns == (*BASELINES, "oracle")
    assert report.mean["oracle"]["psnr"] == math.inf
    assert report.mean["oracle"]["ssim"] == pytest.approx(1.0)
    assert report.mean["oracle"]["mae"] == 0.0
    half = next(item for item in report.images if item.name == "half.tif")
    assert 0.4 < half.cloud_fraction < 0.7
    assert "s2cloudless" in half.cloud_mask
    # the naive fill beats the cloudy input where there is a cloud
    assert half.scores[NAIVE_FILL]["psnr"] > half.scores[CLOUDY_INPUT]["psnr"]
    clear = next(item for item in report.images if item.name == "clear.tif")
    assert clear.scores[CLOUDY_INPUT]["psnr"] == math.inf  # the clear fixture's cloudy image is its target


def test_prediction_equal_to_cloudy_input_equals_the_cloudy_baseline(tmp_path):
    data = _s2_folder(tmp_path / "data")
    report = evaluate_folder(data, lambda cloudy, sar: read_reflectance(cloudy), method="identity")
    for item in report.images:
        assert item.scores["identity"] == item.scores[CLOUDY_INPUT]


def test_reports_are_written_and_json_is_strict(tmp_path):
    data = _s2_folder(tmp_path / "data", sar=True)
    seen_sar = []

    def predict(cloudy: Path, sar: Path | None) -> np.ndarray:
        seen_sar.append(sar)
        return read_reflectance(data / "target" / cloudy.name)

    evaluate_folder(data, predict, tmp_path / "out", method="oracle")
    assert seen_sar == [data / "sar" / "clear.tif", data / "sar" / "half.tif"]
    written = json.loads((tmp_path / "out" / "report.json").read_text(), parse_constant=pytest.fail)
    assert written["mean"]["oracle"]["psnr"] == "inf"
    assert [b["cloud_percent"] for b in written["bins"]] == [list(b) for b in COVER_BINS]
    assert sum(b["count"] for b in written["bins"]) == 2
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| naive fill |" in markdown and "∞" in markdown
    with Image.open(tmp_path / "out" / "grid.png") as grid:
        # one picture per baseline, the method's and the target
        assert grid.size[0] == (len(BASELINES) + 2) * SIZE and grid.size[1] > 2 * SIZE


def test_rgb_pngs_use_the_labelled_rgb_detector(tmp_path):
    data = tmp_path / "data"
    sample = Path(__file__).resolve().parents[3] / "sample"
    for folder, name in (("cloudy", "rice2_249_cloudy.png"), ("target", "rice2_249_clear.png")):
        (data / folder).mkdir(parents=True)
        (data / folder / "249.png").write_bytes((sample / name).read_bytes())
    report = evaluate_folder(data, None, tmp_path / "out")
    assert report.columns == BASELINES
    assert report.method == "none"
    assert "learnt RGB cloud and haze detector" in report.cloud_mask
    assert report.images[0].cloud_fraction > 0.5
    assert sum(bin.count for bin in report.bins) == 1


def test_cover_bins_include_both_ends():
    assert cover_bin(0.0) == 0 and cover_bin(0.199) == 0 and cover_bin(0.2) == 1 and cover_bin(1.0) == 4


def test_wrong_shaped_output_is_a_sentence(tmp_path):
    data = _s2_folder(tmp_path / "data")
    with pytest.raises(EvaluationError, match="differs from the target"):
        evaluate_folder(data, lambda cloudy, sar: np.zeros((3, 4, 4)), method="broken")


def test_command_line_none_and_user_errors(tmp_path, capsys):
    data = _s2_folder(tmp_path / "data")
    assert main(["none", "--data", str(data), "--out", str(tmp_path / "out")]) == 0
    assert "| cloudy input |" in capsys.readouterr().out
    assert (tmp_path / "out" / "report.json").is_file()
    assert main(["none", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "out2")]) == 2
    assert "cloudy/ and target/" in capsys.readouterr().err


def test_real_backend_pipeline_with_a_tiny_untrained_dbcr(tmp_path):
    pytest.importorskip("backend.pipeline")
    dbcr = pytest.importorskip("models.networks.dbcr")
    from models.card import ModelCard, save_weights

    config = dbcr.DBCRConfig(widths=(4, 8, 16, 32), enc_blocks=(1, 1, 1, 1), dec_blocks=(1, 1, 1, 1))
    network = dbcr.DBCRNet(config)
    card = ModelCard(name="dbcr-tiny", algorithm="dbcr", config=config.to_dict(), tile_size=32, default_nfe=1)
    weights = tmp_path / "dbcr-tiny.safetensors"
    save_weights(weights, network.state_dict(), card)
    data = _s2_folder(tmp_path / "data", sar=True)
    assert (
        main(["dbcr", "--data", str(data), "--model", str(weights), "--device", "cpu", "--out", str(tmp_path / "out")])
        == 0
    )
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["columns"] == [*BASELINES, "dbcr"]
    assert all(isinstance(item["scores"]["dbcr"]["mae"], float) for item in written["images"])


def test_keep_clear_leaves_the_clear_image_as_it_is(tmp_path):
    dbcr = pytest.importorskip("models.networks.dbcr")
    from backend.commands.eval import pipeline_predictor
    from models.card import ModelCard, save_weights

    config = dbcr.DBCRConfig(widths=(4, 8, 16, 32), enc_blocks=(1, 1, 1, 1), dec_blocks=(1, 1, 1, 1))
    network = dbcr.DBCRNet(config)
    torch = pytest.importorskip("torch")
    torch.nn.init.normal_(network.ending.weight, std=0.1)  # a network that changes what it sees
    card = ModelCard(name="dbcr-tiny", algorithm="dbcr", config=config.to_dict(), tile_size=32, default_nfe=1)
    weights = tmp_path / "dbcr-tiny.safetensors"
    save_weights(weights, network.state_dict(), card)
    data = _s2_folder(tmp_path / "data", sar=True)
    cloudy, sar = data / "cloudy" / "clear.tif", data / "sar" / "clear.tif"
    kept = pipeline_predictor("dbcr", tmp_path, str(weights), device="cpu", keep_clear=True)(cloudy, sar)
    changed = pipeline_predictor("dbcr", tmp_path, str(weights), device="cpu")(cloudy, sar)
    original = read_reflectance(cloudy)
    assert np.allclose(kept, original, atol=1e-4) and not np.allclose(changed, original, atol=1e-3)


def test_unknown_model_is_a_user_error(tmp_path, capsys):
    pytest.importorskip("backend.worker")
    data = _s2_folder(tmp_path / "data", sar=True)
    assert main(["dbcr", "--data", str(data), "--model", "no-such-model", "--out", str(tmp_path / "out")]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_adaptation_fine_tunes_a_fresh_copy_for_every_image(tmp_path, monkeypatch):
    dbcr = pytest.importorskip("models.networks.dbcr")
    import backend.scene_adaptation
    from backend.commands.eval import pipeline_predictor
    from models.card import ModelCard, save_weights

    config = dbcr.DBCRConfig(widths=(4, 8, 16, 32), enc_blocks=(1, 1, 1, 1), dec_blocks=(1, 1, 1, 1))
    card = ModelCard(name="dbcr-tiny", algorithm="dbcr", config=config.to_dict(), tile_size=32, default_nfe=1)
    weights = tmp_path / "dbcr-tiny.safetensors"
    save_weights(weights, dbcr.DBCRNet(config).state_dict(), card)
    scenes = []

    def fake_adapt(job, network, card, reporter, should_stop, reference=None):
        scenes.append((Path(job.optical).name, job.adapt, network))
        return network

    monkeypatch.setattr(backend.scene_adaptation, "adapt_to_scene", fake_adapt)
    data = _s2_folder(tmp_path / "data", sar=True)
    predict = pipeline_predictor("dbcr", tmp_path, str(weights), device="cpu", adapt=3)
    for name in ("clear.tif", "half.tif"):
        predict(data / "cloudy" / name, data / "sar" / name)
    assert [(name, steps) for name, steps, _ in scenes] == [("clear.tif", 3), ("half.tif", 3)]
    assert scenes[0][2] is not scenes[1][2]  # each image adapts its own freshly loaded network


def test_an_image_with_nothing_to_learn_from_is_scored_without_adaptation(tmp_path, monkeypatch, capsys):
    dbcr = pytest.importorskip("models.networks.dbcr")
    import backend.scene_adaptation
    from backend.commands.eval import pipeline_predictor
    from models.card import ModelCard, save_weights

    config = dbcr.DBCRConfig(widths=(4, 8, 16, 32), enc_blocks=(1, 1, 1, 1), dec_blocks=(1, 1, 1, 1))
    card = ModelCard(name="dbcr-tiny", algorithm="dbcr", config=config.to_dict(), tile_size=32, default_nfe=1)
    weights = tmp_path / "dbcr-tiny.safetensors"
    save_weights(weights, dbcr.DBCRNet(config).state_dict(), card)

    def nothing_to_learn(*args, **kwargs):
        raise backend.scene_adaptation.NothingToLearnError("Cannot adapt to this scene: no clear area")

    monkeypatch.setattr(backend.scene_adaptation, "adapt_to_scene", nothing_to_learn)
    data = _s2_folder(tmp_path / "data", sar=True)
    predict = pipeline_predictor("dbcr", tmp_path, str(weights), device="cpu", adapt=5)
    assert predict(data / "cloudy" / "half.tif", data / "sar" / "half.tif").shape == (13, SIZE, SIZE)
    assert "scored without adaptation" in capsys.readouterr().err
