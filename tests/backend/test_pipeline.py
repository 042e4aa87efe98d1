import os
import tracemalloc

import numpy as np
import pytest
import rasterio
import torch

from backend.errors import BadInputError, CancelledError, ModelError, NoOverlapError
from backend.job import Job
from backend.pipeline import run_removal
from backend.protocol import partial_path
from models.card import MISSING_BAND_FILL


def make_job(rasters, tmp_path, optical="l1c", sar="s1_db", **changes):
    values = {
        "algorithm": "dbcr",
        "optical": rasters[optical],
        "sar": rasters[sar] if sar else None,
        "output": str(tmp_path / "out.tif"),
        "overlap": 8,
        "batch": 3,
    }
    values.update(changes)
    return Job(**values)


def read(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.profile, dataset.descriptions


def assert_no_output(job):
    assert not os.path.exists(job.output)
    assert not os.path.exists(partial_path(job.output))


def test_identity_reproduces_l1c_exactly(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path)
    stats = run_removal(job, kit.identity, card)
    before, profile_in, _ = read(rasters["l1c"])
    after, profile, descriptions = read(job.output)
    np.testing.assert_array_equal(after, before)
    assert stats["tiles"] == 12 and stats["skipped_tiles"] == 0
    assert profile["dtype"] == "uint16" and profile["crs"] == profile_in["crs"]
    assert profile["transform"] == profile_in["transform"]
    assert descriptions[8] == "B8A" and descriptions[10] == "B10"
    assert not os.path.exists(partial_path(job.output))


def test_identity_keeps_l2a_nodata_and_offset(rasters, tmp_path, l2a_card, kit):
    job = make_job(rasters, tmp_path, optical="l2a_nodata", l2a_offset=True)
    seen = []

    def restore(optical, sar, origins, mask=None):
        seen.append(float(optical.min()))
        return optical.clone()

    run_removal(job, restore, l2a_card)
    before, _, _ = read(rasters["l2a_nodata"])
    after, profile, descriptions = read(job.output)
    np.testing.assert_array_equal(after, before)
    assert profile["nodata"] == 0
    assert len(descriptions) == 12 and "B10" not in descriptions
    # the offset is removed before the network: DN 1200 -> reflectance 0.02, and nodata holes are filled
    assert min(seen) >= 0.0


def test_l2a_on_l1c_model_fills_b10_and_drops_it(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path, optical="l2a_nodata")
    b10 = []

    def restore(optical, sar, origins, mask=None):
        assert optical.shape[1] == 13
        b10.append(optical[:, 10].unique())
        return optical.clone()

    run_removal(job, restore, card)
    after, _, descriptions = read(job.output)
    assert after.shape[0] == 12 and "B10" not in descriptions
    assert all(values.tolist() == pytest.approx([MISSING_BAND_FILL["B10"]]) for values in b10)


def test_constant_gives_constant_output_without_seams(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path, batch=2)
    run_removal(job, kit.constant(0.1234), card)
    after, _, _ = read(job.output)
    assert np.all(after == 1234)


def test_constant_on_nodata_input_keeps_holes(rasters, tmp_path, l2a_card, kit):
    job = make_job(rasters, tmp_path, optical="l2a_nodata")
    run_removal(job, kit.constant(0.05), l2a_card)
    after, _, _ = read(job.output)
    assert np.all(after[:, :10, :15] == 0)
    assert np.all(after[:, 10:, :] == 500)


def test_restorer_gets_origins_and_scaled_sar(rasters, tmp_path, card):
    job = make_job(rasters, tmp_path, batch=4)
    calls = []

    def restore(optical, sar, origins, mask=None):
        calls.append((sar.min().item(), sar.max().item(), list(origins), tuple(sar.shape)))
        return optical

    run_removal(job, restore, card)
    assert all(0.0 <= low and high <= 1.0 for low, high, _, _ in calls)
    assert all(shape[1:] == (2, 32, 32) for *_, shape in calls)
    origins = [origin for _, _, batch, _ in calls for origin in batch]
    assert origins[0] == (0, 0) and origins[-1] == (70 - 32, 90 - 32)


def test_small_raster_is_padded_and_cropped(tmp_path, card, kit):
    data = kit.s2_dn(13, height=20, width=25)
    optical = kit.write_raster(tmp_path / "small.tif", data)
    sar = kit.write_raster(tmp_path / "small_s1.tif", kit.s1_db(20, 25))
    job = Job("dbcr", optical, str(tmp_path / "out.tif"), sar=sar)
    run_removal(job, lambda o, s, _, mask=None: o.clone(), card)
    after, _profile, _ = read(job.output)
    np.testing.assert_array_equal(after, data)


def test_missing_sar_is_an_error(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path, sar=None)
    with pytest.raises(BadInputError, match="needs a Sentinel-1 layer"):
        run_removal(job, kit.identity, card)


def test_cancel_removes_partial_output(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path, batch=1)
    polls = iter([False, False, False, True])
    with pytest.raises(CancelledError):
        run_removal(job, kit.identity, card, should_stop=lambda: next(polls))
    assert_no_output(job)


def test_error_in_restorer_removes_partial_output(rasters, tmp_path, card):
    job = make_job(rasters, tmp_path, batch=1)
    calls = []

    def failing(optical, sar, origins, mask=None):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return optical

    with pytest.raises(RuntimeError):
        run_removal(job, failing, card)
    assert_no_output(job)


def test_wrong_shape_and_nan_are_model_errors(rasters, tmp_path, card):
    job = make_job(rasters, tmp_path)
    with pytest.raises(ModelError, match="shape"):
        run_removal(job, lambda o, s, _, mask=None: o[:, :3], card)
    with pytest.raises(ModelError, match="NaN"):
        run_removal(job, lambda o, s, _, mask=None: o * torch.nan, card)
    assert_no_output(job)


def test_no_overlap_stops_before_writing(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path, sar="s1_far")
    with pytest.raises(NoOverlapError):
        run_removal(job, kit.identity, card)
    assert_no_output(job)


def test_progress_counts_all_tiles(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path, batch=4)
    updates, started = [], []
    run_removal(job, kit.identity, card, progress=lambda d, t: updates.append((d, t)), started=started.append)
    assert started == [12]
    assert updates == [(4, 12), (8, 12), (12, 12)]


def _peak_bytes(tmp_path, kit, card, height):
    optical = kit.write_raster(tmp_path / f"tall{height}.tif", kit.s2_dn(13, height=height, width=64))
    sar = kit.write_raster(tmp_path / f"tall{height}_s1.tif", kit.s1_db(height, 64))
    job = Job("dbcr", optical, str(tmp_path / f"out{height}.tif"), sar=sar, overlap=8, batch=2)
    tracemalloc.start()
    try:
        run_removal(job, kit.identity, card)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_height(tmp_path, card, kit):
    # Both taller than one 256-row output block, so both write in whole blocks; 3x the rows, same peak.
    short = _peak_bytes(tmp_path, kit, card, 600)
    tall = _peak_bytes(tmp_path, kit, card, 1800)
    assert tall < 1.2 * short


def test_internal_mask_is_written_back(tmp_path, card, kit):
    mask = np.ones((70, 90), bool)
    mask[:20, 50:] = False
    data = kit.s2_dn(13)
    optical = kit.write_raster(tmp_path / "masked.tif", data, mask=mask)
    sar = kit.write_raster(tmp_path / "s1.tif", kit.s1_db())
    job = Job("dbcr", optical, str(tmp_path / "out.tif"), sar=sar, overlap=8)
    run_removal(job, kit.identity, card)
    with rasterio.open(job.output) as dataset:
        np.testing.assert_array_equal(dataset.dataset_mask() > 0, mask)
        np.testing.assert_array_equal(dataset.read()[:, mask], data[:, mask])
        assert dataset.nodata is None


def test_output_file_layout(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path)
    run_removal(job, kit.identity, card, tags={"CLOUD_REMOVAL_MODEL": "stand-in"})
    with rasterio.open(job.output) as dataset:
        assert dataset.block_shapes[0] == (80, 96)
        assert dataset.compression.name == "deflate"
        assert dataset.profile["tiled"] and dataset.tags()["CLOUD_REMOVAL_MODEL"] == "stand-in"


def test_output_blocks_follow_the_tiles_step_where_they_can(rasters, tmp_path, card, kit):
    job = make_job(rasters, tmp_path, overlap=16, tile_size=48)  # steps of 32 px: a row of blocks per row of tiles
    run_removal(job, kit.identity, card)
    with rasterio.open(job.output) as dataset, rasterio.open(job.optical_paths[0]) as source:
        assert dataset.block_shapes[0] == (32, 32)
        np.testing.assert_array_equal(dataset.read(), source.read())


@pytest.mark.parametrize("flavour", ["nodata_value", "mask", "nan"])
def test_all_nodata_input_is_refused_and_writes_nothing(flavour, tmp_path, kit):
    dn = np.zeros((13, 40, 50), np.uint16)
    if flavour == "nodata_value":
        path = kit.write_raster(tmp_path / "empty.tif", dn, nodata=0)
    elif flavour == "mask":
        path = kit.write_raster(tmp_path / "empty.tif", dn + 500, mask=np.zeros((40, 50), bool))
    else:
        path = kit.write_raster(tmp_path / "empty.tif", np.full((13, 40, 50), np.nan, np.float32))
    job = Job(algorithm="dbcr", optical=path, output=str(tmp_path / "out.tif"), overlap=8)
    with pytest.raises(BadInputError, match=r"The optical raster .*empty.tif holds no valid pixel \(all nodata"):
        run_removal(job, kit.identity, kit.make_card(sar=False))
    assert_no_output(job)


def test_one_valid_pixel_in_the_last_row_is_enough(tmp_path, kit):
    dn = np.zeros((13, 40, 50), np.uint16)
    dn[:, -1, -1] = 700
    path = kit.write_raster(tmp_path / "corner.tif", dn, nodata=0)
    job = Job(algorithm="dbcr", optical=path, output=str(tmp_path / "o.tif"))
    stats = run_removal(job, kit.identity, kit.make_card(sar=False))
    after, _, _ = read(job.output)
    assert after[0, -1, -1] == 700 and stats["skipped_tiles"] >= 1


def test_all_nodata_input_fails_before_the_model_loads(tmp_path, monkeypatch, capsys, kit):
    from backend import worker
    from backend.cli import main
    from backend.protocol import EXIT_USER_ERROR, decode_event

    def must_not_load(job, device, *_hooks):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(worker, "load_restorer", must_not_load)
    empty = kit.write_raster(tmp_path / "empty.tif", np.zeros((13, 40, 50), np.uint16), nodata=0)
    output = str(tmp_path / "out.tif")
    assert main(["run", "dbcr", "--optical", empty, "--output", output, "--events"]) == EXIT_USER_ERROR
    events = [event for event in map(decode_event, capsys.readouterr().out.splitlines()) if event is not None]
    assert events[-1].kind == "error" and events[-1].get("code") == "bad_input"
    assert events[-1].get("message").startswith(f"The optical raster {empty} holds no valid pixel (all nodata")
    assert not os.path.exists(output) and not os.path.exists(partial_path(output))


def test_the_jobs_cloud_threshold_reaches_the_restorer(monkeypatch):
    from backend import worker
    from models import restorers

    seen = []
    monkeypatch.setattr(restorers, "make_restorer", lambda *args: seen.append(args) or (lambda *a, **k: None))
    job = Job(algorithm="diffcr", optical="x.tif", output="o.tif", device="cpu", cloud_threshold=0.7)
    worker.load_restorer(job, torch.device("cpu"), scene_fill=False)
    assert seen[0][-1] == 0.7
