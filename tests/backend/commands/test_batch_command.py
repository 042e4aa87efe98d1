import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio

from backend.cli import main
from backend.protocol import EXIT_OK, EXIT_USER_ERROR, decode_event

ROOT = Path(__file__).resolve().parents[3]


def batch(scenes, out_dir, model):
    args = [
        sys.executable, "-m", "backend", "batch", "dbcr", "--scenes", str(scenes), "--out-dir", str(out_dir),
        "--workers", "2", "--model", model, "--device", "cpu", "--threads", "1", "--events",
    ]  # fmt: skip
    process = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    events = [decode_event(line) for line in process.stdout.splitlines() if line.strip()]
    assert all(events), process.stdout + process.stderr
    return process.returncode, events


def test_batch_on_a_local_cluster_matches_run_and_resumes(kit, tiny_model, tmp_path):
    kit.write_raster(tmp_path / "first.tif", kit.s2_dn(13, seed=3))
    kit.write_raster(tmp_path / "second.tif", kit.s2_dn(13, seed=4))
    kit.write_raster(tmp_path / "s1.tif", kit.s1_db())
    (tmp_path / "broken.tif").write_text("not a GeoTIFF")
    scenes = tmp_path / "scenes.csv"
    scenes.write_text("optical,sar,output\nfirst.tif,s1.tif,\nsecond.tif,s1.tif,two.tif\nbroken.tif,s1.tif,\n")
    out = tmp_path / "out"

    code, events = batch(scenes, out, tiny_model)
    assert code == EXIT_USER_ERROR
    last = events[-1]
    assert last.kind == "error" and "scene" not in last.data
    assert [failure["scene"] for failure in last.get("failed")] == ["broken_cloudfree.tif"]
    assert "broken_cloudfree.tif: Cannot read" in last.get("message")
    finished = {event.get("scene") for event in events if event.kind == "finished" and "scene" in event.data}
    assert finished == {"first_cloudfree.tif", "two.tif"}
    assert any(event.kind == "progress" and event.get("scene") == "two.tif" for event in events)
    assert [event.get("done") for event in events if event.get("unit") == "scenes"] == [1, 2, 3]
    assert sorted(os.listdir(out)) == ["first_cloudfree.tif", "two.tif"]

    for optical, name in (("first.tif", "first_cloudfree.tif"), ("second.tif", "two.tif")):
        single = str(tmp_path / f"single-{name}")
        run = ["run", "dbcr", "--optical", str(tmp_path / optical), "--sar", str(tmp_path / "s1.tif"),
               "--output", single, "--model", tiny_model, "--device", "cpu", "--threads", "1"]  # fmt: skip
        assert main(run) == EXIT_OK
        with rasterio.open(out / name) as batched, rasterio.open(single) as alone:
            np.testing.assert_array_equal(batched.read(), alone.read())
            assert batched.tags()["CLOUD_REMOVAL_MODEL"] == "tiny"

    written = {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)}
    code, events = batch(scenes, out, tiny_model)
    assert code == EXIT_USER_ERROR
    skipped = {event.get("scene") for event in events if event.kind == "finished" and event.get("skipped")}
    assert skipped == {"first_cloudfree.tif", "two.tif"}
    assert not any(event.kind == "started" for event in events)
    assert {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)} == written
    assert events[-1].get("stats") == {"scenes": 3, "finished": 0, "skipped": 2}


def test_batch_usage_errors_are_events(tmp_path, capsys):
    scenes = tmp_path / "scenes.csv"
    scenes.write_text("image,radar\na.tif,b.tif\n")
    code = main(["batch", "dbcr", "--scenes", str(scenes), "--out-dir", str(tmp_path / "out"), "--events"])
    assert code == EXIT_USER_ERROR
    event = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert event["event"] == "error" and "header optical,sar,output" in event["message"]
    assert main(["batch", "dbcr", "--scenes", str(scenes), "--out-dir", "x", "--resources", "GPU"]) == EXIT_USER_ERROR
