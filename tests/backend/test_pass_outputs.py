import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window
from scipy.ndimage import distance_transform_edt

from backend import pass_outputs
from backend.errors import BadInputError
from backend.job import Job
from backend.pass_outputs import MASK_NODATA, KnownClouds, PassOutputs, tile_change
from backend.reporter import Reporter
from backend.tiling import Tile, tile_grid
from backend.worker import execute
from models.card import S2_L1C_BANDS, ModelCard
from models.keep_clear import FEATHER_SIGMA

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
S2 = str(SAMPLE / "ROIs1868_summer_s2_cloudy_19_p30.tif")
S1 = str(SAMPLE / "ROIs1868_summer_s1_19_p30.tif")
# The feather reaches 3 sigma along rows and columns, so up to 3 sigma x sqrt(2) diagonally.
FEATHER_REACH = 3 * FEATHER_SIGMA * 2**0.5


def _job(tmp_path: Path, model: str, **settings: object) -> Job:
    return Job(
        algorithm="dbcr", optical=S2, sar=S1, model=model, output=str(tmp_path / "out.tif"), device="cpu", threads=1,
        tile_size=128, **settings,
    )  # fmt: skip


def test_one_mask_serves_keep_clear_and_the_mask_output(tmp_path, tiny_model, capsys, monkeypatch):
    computed = []
    real = pass_outputs.tile_cloud_mask
    monkeypatch.setattr(pass_outputs, "tile_cloud_mask", lambda *a: computed.append(1) or real(*a))
    mask_path, change_path = str(tmp_path / "mask.tif"), str(tmp_path / "change.tif")
    job = _job(tmp_path, tiny_model, keep_clear=True, cloud_mask_output=mask_path, change_output=change_path)
    assert execute(job, Reporter(events=True)) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stats"]
    with rasterio.open(S2) as before, rasterio.open(job.output) as after, rasterio.open(mask_path) as mask_file:
        a, b, mask = before.read().astype(int), after.read().astype(int), mask_file.read(1)
    with rasterio.open(change_path) as change_file:
        change = change_file.read(1)
    assert set(np.unique(mask)) <= {0, 1, MASK_NODATA}
    assert stats["cloud_fraction"] == pytest.approx(float((mask == 1).mean()), abs=1e-4)
    assert stats["extra_outputs"] == {"mask": mask_path, "change": change_path}
    # every pixel the mask calls clear, well away from clouds (past the feathered edge), is the input bit for bit
    cloudy = mask == 1
    far = distance_transform_edt(~cloudy) > FEATHER_REACH
    assert far.any() and np.all(a[:, far] == b[:, far])
    assert np.all(change[far] < 1e-3) and change[cloudy].mean() > 1e-3
    tiles = sum(len(row) for row in tile_grid(256, 256, 128, 32))
    assert len(computed) == -(-tiles // job.batch)  # once per batch of tiles: no second pass for the mask output


def test_clouds_known_from_the_scene_are_not_computed_again(monkeypatch):
    monkeypatch.setattr(pass_outputs, "tile_cloud_mask", lambda *a: pytest.fail("computed again"))
    known = np.zeros((64, 64), dtype=bool)
    known[10:20, 30:40] = True
    outputs = PassOutputs(keep_clear=True, cloud_bands=S2_L1C_BANDS, known=KnownClouds(Window(0, 0, 64, 64), known))
    masks = outputs.tile_masks(torch.zeros(1, 13, 32, 32), [Tile(row=0, col=16, height=32, width=32, size=32)])
    assert masks[0, 0].numpy().astype(bool).tolist() == known[0:32, 16:48].tolist()


def test_a_tile_outside_the_known_window_finds_its_own_clouds(monkeypatch):
    monkeypatch.setattr(pass_outputs, "tile_cloud_mask", lambda optical, *a: torch.ones(1, 1, 32, 32))
    outputs = PassOutputs(keep_clear=True, known=KnownClouds(Window(0, 0, 16, 16), np.zeros((16, 16), bool)))
    masks = outputs.tile_masks(torch.zeros(1, 13, 32, 32), [Tile(row=0, col=0, height=20, width=32, size=32)])
    assert masks[0, 0, :20].all() and not masks[0, 0, 20:].any()  # the padding below the tile is no cloud


def test_change_averages_only_the_bands_read_from_the_input():
    restored, optical = np.ones((3, 2, 2), np.float32), np.zeros((3, 2, 2), np.float32)
    restored[2] = 9.0  # a band filled by the model (e.g. B10 of L2A): no part of the change
    assert tile_change(restored, optical, [0, 1]).tolist() == [[[1.0, 1.0], [1.0, 1.0]]]


def test_keep_clear_is_on_by_default(tmp_path):
    job = Job(algorithm="dbcr", optical="x.tif", output=str(tmp_path / "o.tif"))
    assert (
        job.keep_clear and pass_outputs.pass_outputs(job, ModelCard(name="s2", algorithm="dbcr", config={})).keep_clear
    )


def test_a_local_fill_model_finds_clouds_at_the_jobs_threshold_with_keep_clear_off(tmp_path):
    job = Job(algorithm="dbcr", optical="x.tif", output=str(tmp_path / "o.tif"), keep_clear=False, cloud_threshold=0.7)
    local_fill = ModelCard(name="s2", algorithm="dbcr", config={}, bridge_start="local_fill")
    outputs = pass_outputs.pass_outputs(job, local_fill)
    assert outputs.needs_clouds and not outputs.keep_clear and outputs.threshold == 0.7
    cloudy_start = ModelCard(name="s2", algorithm="dbcr", config={})
    assert not pass_outputs.pass_outputs(job, cloudy_start).needs_clouds


def test_a_model_whose_bands_show_no_clouds_is_told_so(tmp_path, caplog):
    card = ModelCard(name="nir", algorithm="dbcr", config={}, optical_bands=("B8", "B11"))
    job = Job(algorithm="dbcr", optical="x.tif", output=str(tmp_path / "o.tif"))
    assert not pass_outputs.pass_outputs(job, card).keep_clear
    assert "No cloud mask can be computed" in caplog.text
    masked = Job(algorithm="dbcr", optical="x.tif", output=str(tmp_path / "o.tif"), cloud_mask_output="m.tif")
    with pytest.raises(BadInputError, match="Cannot write a cloud mask"):
        pass_outputs.pass_outputs(masked, card)


def test_extra_outputs_are_written_where_the_job_says_on_the_grid(tmp_path, tiny_model, capsys):
    (tmp_path / "sub").mkdir()
    job = Job(
        algorithm="dbcr",
        optical=S2,
        sar=S1,
        model=tiny_model,
        output=str(tmp_path / "out.tif"),
        device="cpu",
        threads=1,
        tile_size=128,
        keep_clear=True,
        cloud_mask_output=str(tmp_path / "chosen-mask.tif"),
        change_output=str(tmp_path / "sub" / "chosen-change.tif"),
    )
    assert execute(job, Reporter(events=True)) == 0
    finished = [line for line in capsys.readouterr().out.splitlines() if '"finished"' in line][-1]
    assert '"cloud_fraction"' in finished
    assert json.loads(finished)["stats"]["extra_outputs"] == job.extra_outputs  # written where the job said
    assert sorted(path.name for path in tmp_path.glob("*.tif")) == ["chosen-mask.tif", "out.tif"]
    with (
        rasterio.open(S2) as source,
        rasterio.open(job.cloud_mask_output) as mask,
        rasterio.open(job.change_output) as change,
    ):
        assert mask.transform == source.transform and change.shape == source.shape
        cloud = mask.read(1) == 1
        delta = change.read(1)
    assert 0.3 < cloud.mean() < 0.7
    # keep-clear: no change far from the clouds, change under them
    assert np.median(delta[~cloud]) == 0 and delta[cloud].mean() > 0
