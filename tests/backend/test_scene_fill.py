"""The scene's coarse fill: read averaged down, and what keeps a local-fill DB-CR's tiles from showing."""

from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend import worker
from backend.job import Job
from backend.reporter import Reporter
from backend.scene_fill import coarse_shape, read_scene_fill
from backend.worker import execute
from models.card import ModelCard, save_weights
from models.networks.dbcr import DBCRConfig, DBCRNet

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
OPTICAL, SAR = SAMPLE / "ROIs1868_summer_s2_cloudy_19_p30.tif", SAMPLE / "ROIs1868_summer_s1_19_p30.tif"


@pytest.mark.parametrize(
    ("shape", "coarse"), [((256, 256), (256, 256)), ((10980, 10980), (500, 500)), ((600, 100), (300, 50))]
)
def test_a_scene_is_averaged_down_to_at_most_512_a_side(shape, coarse):
    assert coarse_shape(*shape) == coarse


@pytest.fixture(scope="module")
def local_fill_model(tmp_path_factory):
    """A fresh (identity) tiny DB-CR with a local-fill start: its output is the fill itself."""
    config = DBCRConfig(widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 1), cloudy_channels=14)
    card = ModelCard(name="fill", algorithm="dbcr", config=config.to_dict(), tile_size=256, bridge_start="local_fill")
    path = tmp_path_factory.mktemp("models") / "fill.safetensors"
    save_weights(path, DBCRNet(config).state_dict(), card)
    return str(path)


def test_the_scene_fill_reads_the_whole_scene_in_the_models_bands(local_fill_model):
    from models.registry import load_model

    _, card = load_model(local_fill_model)
    job = Job(algorithm="dbcr", optical=str(OPTICAL), sar=str(SAR), output="unused.tif")
    fill = read_scene_fill(job, card, max_side=64)
    assert fill.coarse.shape == (13, 64, 64) and fill.factor == (4.0, 4.0)
    assert np.isfinite(fill.coarse).all()
    # The sample is about half cloud; filled, its coarse blue band is far darker than the cloud tops.
    assert float(np.percentile(fill.coarse[1], 99)) < 0.25


def _run(tmp_path, model, tile, name):
    job = Job(
        algorithm="dbcr", optical=str(OPTICAL), sar=str(SAR), model=model, output=str(tmp_path / name),
        device="cpu", threads=1, tile_size=tile,
    )  # fmt: skip
    assert execute(job, Reporter(events=True)) == 0
    with rasterio.open(job.output) as dataset:
        return dataset.read().astype(np.float32) / 10000


def test_small_tiles_fill_a_large_cloud_as_one_tile_does(tmp_path, local_fill_model, monkeypatch, capsys):
    whole = _run(tmp_path, local_fill_model, 256, "whole.tif")
    with rasterio.open(OPTICAL) as dataset:
        clouds = np.any(dataset.read() != (whole * 10000).round().astype(np.uint16), axis=0)
    tiled = _run(tmp_path, local_fill_model, 32, "tiled.tif")
    monkeypatch.setattr(worker, "scene_background", lambda job, card: None)
    alone = _run(tmp_path, local_fill_model, 32, "alone.tif")
    with_scene = np.abs(tiled - whole)[:, clouds].mean()
    without = np.abs(alone - whole)[:, clouds].mean()
    assert clouds.mean() > 0.2
    assert with_scene < 0.5 * without, (with_scene, without)
