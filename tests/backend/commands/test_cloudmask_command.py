import json
from pathlib import Path

import numpy as np
import rasterio

from backend.cli import main
from backend.cloud_mask_raster import CloudMaskJob, blocks, with_halo
from models.cloudmask import cloud_probability, mask_from_probability

SAMPLE = Path(__file__).resolve().parents[3] / "sample" / "ROIs1868_summer_s2_cloudy_19_p30.tif"


def _events(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _mirrored_sample(tmp_path, kit):
    # 600 x 600 from the real cloudy sample, mirrored: several 512-px blocks with clouds across their edges
    with rasterio.open(SAMPLE) as dataset:
        tile = dataset.read()
    row = np.concatenate([tile, tile[:, :, ::-1], tile], axis=2)
    mosaic = np.concatenate([row, row[:, ::-1], row], axis=1)[:, :600, :600]
    return kit.write_raster(tmp_path / "mosaic.tif", mosaic), mosaic


def test_blocks_cover_the_raster_once():
    windows = list(blocks(600, 700, 512))
    covered = np.zeros((600, 700), int)
    for w in windows:
        covered[int(w.row_off) : int(w.row_off + w.height), int(w.col_off) : int(w.col_off + w.width)] += 1
    assert np.all(covered == 1)


def test_halo_is_clamped_to_the_raster():
    grown = with_halo(next(blocks(600, 700, 512)), 16, 600, 700)
    assert (grown.col_off, grown.row_off, grown.width, grown.height) == (0, 0, 528, 528)


def test_blockwise_mask_equals_the_whole_image_mask(tmp_path, kit, capsys):
    path, mosaic = _mirrored_sample(tmp_path, kit)
    code = main(
        [
            "cloudmask",
            "--optical",
            path,
            "--mask",
            str(tmp_path / "m.tif"),
            "--probability",
            str(tmp_path / "p.tif"),
            "--events",
        ]
    )
    events = _events(capsys)
    assert code == 0 and events[-1]["event"] == "finished"
    whole_probability = cloud_probability(mosaic.astype(np.float32) / 10000.0)
    whole = mask_from_probability(whole_probability, 0.4, 4, 2)
    with rasterio.open(tmp_path / "m.tif") as written:
        assert written.nodata == 255 and written.crs is not None
        np.testing.assert_array_equal(written.read(1), whole.astype(np.uint8))
    with rasterio.open(tmp_path / "p.tif") as written:
        np.testing.assert_allclose(written.read(1), whole_probability, atol=1e-6)
    assert abs(events[-1]["stats"]["cloud_fraction"] - whole.mean()) < 1e-3
    assert 0.3 < events[-1]["stats"]["cloud_fraction"] < 0.7  # the sample is about half cloud


def test_nodata_pixels_are_written_as_nodata(tmp_path, rasters, capsys):
    assert main(["cloudmask", "--optical", rasters["l2a_nodata"], "--mask", str(tmp_path / "m.tif")]) == 0
    with rasterio.open(tmp_path / "m.tif") as written:
        mask = written.read(1)
    assert np.all(mask[:10, :15] == 255) and np.all(mask[10:, 15:] != 255)


def test_wrong_band_count_is_a_sentence(tmp_path, rasters, capsys):
    code = main(["cloudmask", "--optical", rasters["wrong_bands"], "--mask", str(tmp_path / "m.tif"), "--events"])
    error = _events(capsys)[-1]
    assert code == 2 and error["event"] == "error" and "band" in error["message"]
    assert not (tmp_path / "m.tif").exists()


def test_nothing_to_write_is_refused(rasters, capsys):
    assert main(["cloudmask", "--optical", rasters["l1c"], "--events"]) == 2
    assert "nothing to write" in _events(capsys)[-1]["message"]


def test_a_json_job_file_with_flag_override(tmp_path, rasters, capsys):
    job = CloudMaskJob(rasters["l1c"], mask=str(tmp_path / "m.tif"), threshold=0.5, dilation=0)
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job.to_dict()))
    assert CloudMaskJob.from_dict(json.loads(path.read_text())) == job
    other = str(tmp_path / "other.tif")
    assert main(["cloudmask", "--job", str(path), "--mask", other, "--events"]) == 0
    assert _events(capsys)[-1]["output"] == other
    assert (tmp_path / "other.tif").exists() and not (tmp_path / "m.tif").exists()


def test_settings_outside_the_table_are_refused(tmp_path, rasters, capsys):
    mask = str(tmp_path / "m.tif")
    for flags, sentence in (
        (["--threshold", "1.2"], "Cloud threshold must be between 0.01 and 0.99, not 1.2"),
        (["--dilation", "101"], "Dilation must be between 0 and 100"),
    ):
        assert main(["cloudmask", "--optical", rasters["l1c"], "--mask", mask, "--events", *flags]) == 2
        assert sentence in _events(capsys)[-1]["message"]
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"optical": rasters["l1c"], "mask": mask, "dilation": "2"}))
    assert main(["cloudmask", "--job", str(path), "--events"]) == 2
    assert "dilation must be int" in _events(capsys)[-1]["message"]
