import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend import worker as runner
from backend.cli import main
from backend.commands.run import extra_output_paths, job_from_args
from backend.protocol import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_USER_ERROR, decode_event, partial_path

ROOT = Path(__file__).resolve().parents[3]


def events_of(text):
    lines = [line for line in text.splitlines() if line.strip()]
    events = [decode_event(line) for line in lines]
    assert all(events), f"stdout holds a line that is not an event: {lines}"
    return events


@pytest.fixture
def fake_model(monkeypatch, kit):
    """Replace model loading by a stand-in restorer (identity unless a test sets another)."""
    state = {"restore": kit.identity, "card": kit.make_card()}

    def load(job, device, *_hooks):  # adapt, step callback
        return state["restore"], state["card"]

    monkeypatch.setattr(runner, "load_restorer", load)
    return state


def run_args(rasters, tmp_path, *extra):
    return [
        "run", "dbcr", "--optical", rasters["l1c"], "--sar", rasters["s1_db"],
        "--output", str(tmp_path / "out.tif"), "--device", "cpu", "--threads", "1", *extra,
    ]  # fmt: skip


def test_run_events(rasters, tmp_path, fake_model, capsys):
    code = main([*run_args(rasters, tmp_path, "--events", "--batch", "5")])
    out = capsys.readouterr()
    events = events_of(out.out)
    assert code == EXIT_OK
    kinds = [event.kind for event in events]
    assert kinds[-1] == "finished" and "started" in kinds
    started = next(event for event in events if event.kind == "started")
    assert started.get("tiles") == 12 and started.get("algorithm") == "dbcr"
    progress = [(event.get("done"), event.get("total")) for event in events if event.kind == "progress"]
    assert progress == [(4, 12), (8, 12), (12, 12)]  # 3 rows of 4 tiles: a batch of 5 never spans two rows
    finished = events[-1]
    assert finished.get("output") == str(tmp_path / "out.tif")
    assert finished.get("stats")["tiles"] == 12
    with rasterio.open(tmp_path / "out.tif") as out_ds, rasterio.open(rasters["l1c"]) as in_ds:
        np.testing.assert_array_equal(out_ds.read(), in_ds.read())


def test_text_mode_writes_nothing_on_stdout(rasters, tmp_path, fake_model, capsys):
    assert main(run_args(rasters, tmp_path)) == EXIT_OK
    out = capsys.readouterr()
    assert out.out == ""
    assert "12/12 tiles (100%)" in out.err and "Wrote" in out.err


def test_user_error_is_an_event_without_traceback(rasters, tmp_path, fake_model, capsys):
    args = run_args(rasters, tmp_path, "--events")
    args[args.index("--optical") + 1] = rasters["wrong_bands"]
    assert main(args) == EXIT_USER_ERROR
    out = capsys.readouterr()
    (error,) = [event for event in events_of(out.out) if event.kind == "error"]
    assert error.get("code") == "bad_input" and error.get("message").startswith("S2 layer has 4 bands")
    assert "Traceback" not in out.err
    assert not (tmp_path / "out.tif").exists()


def test_bad_flag_values_and_usage_errors(rasters, tmp_path, fake_model, capsys):
    assert main([*run_args(rasters, tmp_path, "--events", "--nfe", "99")]) == EXIT_USER_ERROR
    (error,) = events_of(capsys.readouterr().out)
    assert error.kind == "error" and "NFE must be between 1 and 50" in error.get("message")
    assert main(["run", "dbcr", "--events", "--nfe", "many"]) == EXIT_USER_ERROR
    (error,) = events_of(capsys.readouterr().out)
    assert error.kind == "error" and "invalid int value" in error.get("message")
    assert main(["run", "dbcr", "--bogus"]) == EXIT_USER_ERROR
    assert "unrecognized arguments" in capsys.readouterr().err


def test_job_file_with_flag_override(rasters, tmp_path, fake_model, capsys):
    job = {"algorithm": "dbcr", "optical": rasters["l1c"], "sar": rasters["s1_db"], "nfe": 3,
           "output": str(tmp_path / "from_file.tif"), "device": "cpu", "threads": 1}  # fmt: skip
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    other = str(tmp_path / "override.tif")
    assert main(["run", "--job", str(path), "--output", other, "--events"]) == EXIT_OK
    events = events_of(capsys.readouterr().out)
    assert events[-1].get("output") == other and events[-1].get("stats")["nfe"] == 3
    path.write_text("{not json")
    assert main(["run", "--job", str(path), "--events"]) == EXIT_USER_ERROR
    assert "not valid JSON" in events_of(capsys.readouterr().out)[0].get("message")


def test_extra_outputs_shorthand_and_explicit_paths(rasters, tmp_path):
    import backend.cli as cli

    def job(*flags):
        return job_from_args(cli.build_parser("run").parse_args(run_args(rasters, tmp_path, *flags)))

    plain = job("--extra-outputs", "mask,change")
    assert plain.cloud_mask_output == str(tmp_path / "out_cloudmask.tif")
    assert plain.change_output == str(tmp_path / "out_change.tif")
    chosen = str(tmp_path / "chosen.tif")
    mixed = job("--extra-outputs", "mask,change", "--cloud-mask-output", chosen)
    assert mixed.cloud_mask_output == chosen and mixed.change_output == str(tmp_path / "out_change.tif")
    only = job("--change-output", chosen)
    assert only.extra_outputs == {"change": chosen}
    assert extra_output_paths("mask", "/x/out.tif") == {"cloud_mask_output": "/x/out_cloudmask.tif"}


def test_unknown_extra_output_is_a_sentence(rasters, tmp_path, fake_model, capsys):
    assert main(run_args(rasters, tmp_path, "--events", "--extra-outputs", "snow")) == EXIT_USER_ERROR
    (error,) = events_of(capsys.readouterr().out)
    assert "Unknown extra output snow; choose from mask, change" in error.get("message")


def test_sigterm_cancels_and_removes_partial(rasters, tmp_path, fake_model, capsys, kit):
    def restore(optical, sar, origins, mask=None):
        os.kill(os.getpid(), signal.SIGTERM)  # as QGIS does when the user presses Cancel
        return optical

    fake_model["restore"] = restore
    before = signal.getsignal(signal.SIGTERM)
    # --no-keep-clear: every tile goes through the network, whether or not the noise raster looks cloudy
    assert main([*run_args(rasters, tmp_path, "--events", "--batch", "1", "--no-keep-clear")]) == EXIT_CANCELLED
    events = events_of(capsys.readouterr().out)
    assert events[-1].kind == "cancelled"
    assert sum(event.kind == "progress" for event in events) == 1  # stopped at the next batch
    assert not (tmp_path / "out.tif").exists() and not Path(partial_path(str(tmp_path / "out.tif"))).exists()
    assert signal.getsignal(signal.SIGTERM) is before


def test_internal_error_exit_code(rasters, tmp_path, fake_model, capsys):
    def broken(optical, sar, origins, mask=None):
        raise ZeroDivisionError("bug")

    fake_model["restore"] = broken
    assert main([*run_args(rasters, tmp_path, "--events", "--no-keep-clear")]) == EXIT_INTERNAL
    out = capsys.readouterr()
    error = events_of(out.out)[-1]
    assert error.get("code") == "internal" and "ZeroDivisionError" in error.get("message")
    assert "Traceback" in out.err
    assert not (tmp_path / "out.tif").exists()


def test_warnings_become_log_events(rasters, tmp_path, fake_model, capsys):
    args = run_args(rasters, tmp_path, "--events")
    args[args.index("--sar") + 1] = rasters["s1_left_half"]
    assert main(args) == EXIT_OK
    logs = [event for event in events_of(capsys.readouterr().out) if event.kind == "log"]
    assert any(event.get("level") == "warning" and "S1 covers about" in event.get("message") for event in logs)


def backend(*args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "backend", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


def test_real_process_with_a_real_model(rasters, tmp_path, tiny_model):
    output = str(tmp_path / "out.tif")
    process = backend(
        "run", "dbcr", "--optical", rasters["l1c"], "--sar", rasters["s1_4326"], "--model", tiny_model,
        "--output", output, "--device", "cpu", "--threads", "1", "--events",
    )  # fmt: skip
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_OK, stderr
    events = events_of(stdout)
    assert events[-1].kind == "finished" and events[-1].get("stats")["model"] == "tiny"
    with rasterio.open(output) as out_ds, rasterio.open(rasters["l1c"]) as in_ds:
        assert (out_ds.count, out_ds.dtypes[0], out_ds.shape) == (13, "uint16", in_ds.shape)
        assert out_ds.tags()["CLOUD_REMOVAL_MODEL"] == "tiny"


def test_real_process_sigterm(tmp_path, tiny_model, kit):
    optical = kit.write_raster(tmp_path / "big.tif", kit.s2_dn(13, height=400, width=400))
    sar = kit.write_raster(tmp_path / "big_s1.tif", kit.s1_db(400, 400))
    output = str(tmp_path / "out.tif")
    process = backend(
        "run", "dbcr", "--optical", optical, "--sar", sar, "--model", tiny_model, "--output", output,
        "--device", "cpu", "--threads", "1", "--batch", "1", "--events",
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        event = decode_event(line)
        if event is not None and event.kind == "progress":
            process.send_signal(signal.SIGTERM)
            break
    rest, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_CANCELLED, stderr
    assert events_of(rest)[-1].kind == "cancelled"
    assert not os.path.exists(output) and not os.path.exists(partial_path(output))


def test_broken_environment_is_an_event(monkeypatch, capsys):
    import backend.cli as cli

    def broken(command):
        raise ImportError("No module named 'rasterio'")

    monkeypatch.setattr(cli, "build_parser", broken)
    assert main(["run", "dbcr", "--events"]) == EXIT_INTERNAL
    (error,) = events_of(capsys.readouterr().out)
    assert error.get("code") == "internal" and "rasterio" in error.get("message")


def test_unreadable_input_fails_before_the_model_loads(rasters, tmp_path, monkeypatch, capsys):
    def must_not_load(job, device, *_hooks):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(runner, "load_restorer", must_not_load)
    args = run_args(rasters, tmp_path, "--events")
    args[args.index("--sar") + 1] = rasters["unreadable"]
    assert main(args) == EXIT_USER_ERROR
    (error,) = events_of(capsys.readouterr().out)
    assert error.get("code") == "unreadable_file"
    assert error.get("message").startswith(f"Cannot read {rasters['unreadable']}: ")
