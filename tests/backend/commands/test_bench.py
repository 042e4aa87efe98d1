import numpy as np
import pytest
import rasterio

from backend.cli import main
from backend.commands.bench import SAMPLE_DIR, SAMPLE_S2, mirrored_mosaic


@pytest.mark.skipif(not (SAMPLE_DIR / SAMPLE_S2).exists(), reason="the SEN12MS-CR sample is not here")
def test_mosaic_is_continuous_and_georeferenced(tmp_path):
    path = mirrored_mosaic(str(SAMPLE_DIR / SAMPLE_S2), 300, str(tmp_path / "m.tif"))
    with rasterio.open(SAMPLE_DIR / SAMPLE_S2) as sample, rasterio.open(path) as mosaic:
        data = mosaic.read(4)
        assert mosaic.shape == (300, 300) and mosaic.transform == sample.transform and mosaic.crs == sample.crs
        np.testing.assert_array_equal(data[:256, :256], sample.read(4))
        np.testing.assert_array_equal(data[:256, 256], data[:256, 255])  # mirrored: no jump at the seam


@pytest.mark.skipif(not (SAMPLE_DIR / SAMPLE_S2).exists(), reason="the SEN12MS-CR sample is not here")
def test_bench_table(tiny_model, capsys):
    code = main(["bench", "--sizes", "96", "--model", tiny_model, "--device", "cpu", "--threads", "1"])
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = out.out.splitlines()
    assert lines[0].startswith("Model tiny, NFE 1, device cpu")
    rows = [line for line in lines if line.startswith("| 96² |")]
    assert [row.split(" | ")[1:3] for row in rows] == [["torch", "16"], ["onnxruntime", "16"]]
    assert all(row.endswith("% |") for row in rows)  # the pipeline's overhead over the run's network time
    assert all(float(row.split(" | ")[9]) > 0 for row in rows)  # the sample has clouds: the network ran
    assert all(float(row.split(" | ")[10]) > 0 for row in rows)  # keep-clear is on: seconds in s2cloudless


@pytest.mark.skipif(not (SAMPLE_DIR / SAMPLE_S2).exists(), reason="the SEN12MS-CR sample is not here")
def test_bench_runs_the_shipped_local_fill_model(capsys):
    # Its network-only timing restores tiles of no raster: no scene to read a coarse fill from.
    code = main(["bench", "--sizes", "64", "--runtimes", "torch", "--device", "cpu", "--threads", "1"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.splitlines()[0].startswith("Model dbcr-lite, NFE 1")


def test_bench_refuses_an_unknown_runtime(capsys):
    assert main(["bench", "--runtimes", "tensorflow"]) == 2
    assert "runtimes must be among" in capsys.readouterr().err


def test_per_tile_table_times_both_runtimes(tiny_models, capsys):
    code = main(["bench", "--per-tile", f"dbcr-lite,{tiny_models['tiny-de']}", "--tile", "32", "--repeats", "1",
                 "--threads", "1", "--device", "cpu"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = [line for line in out.out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| model | method | NFE | weights | torch s/tile | onnxruntime s/tile |"
    assert rows[1].startswith("| dbcr-lite | dbcr | 1 | trained | ")  # the shipped model, not the bare config
    assert rows[2].startswith(f"| {tiny_models['tiny-de']} | de | 3 | trained | ")


def test_per_tile_refuses_a_bad_tile(capsys):
    assert main(["bench", "--per-tile", "--tile", "40"]) == 2
    assert "multiple of 16" in capsys.readouterr().err
