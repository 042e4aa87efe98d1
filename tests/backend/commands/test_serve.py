import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rasterio

from backend.model_cache import ModelCache
from backend.protocol import decode_event
from backend.reporter import Reporter
from backend.serve_loop import READY_MESSAGE, ServeLoop

ROOT = Path(__file__).resolve().parents[3]


def job_line(rasters, model, output, **changes):
    job = {
        "algorithm": "dbcr", "optical": rasters["l1c"], "sar": rasters["s1_db"], "model": model,
        "output": str(output), "device": "cpu", "threads": 1, **changes,
    }  # fmt: skip
    return json.dumps(job)


def answers(text):
    """The terminal event of each job, in order (finished, error or cancelled)."""
    events = [decode_event(line) for line in text.splitlines() if line.strip()]
    assert all(events), text
    return [event for event in events if event.kind in ("finished", "error", "cancelled")]


def serve(lines, execute=None, cache=None):
    out = io.StringIO()
    loop = ServeLoop(Reporter(events=True, out=out), cache, execute)
    assert loop.run(io.StringIO("".join(line + "\n" for line in lines))) == 0
    return out.getvalue()


def test_two_jobs_one_model_load_and_bad_lines_answered(rasters, tiny_model, tmp_path, monkeypatch):

    cache = ModelCache()
    lines = [
        job_line(rasters, tiny_model, tmp_path / "a.tif"),
        "{not json",
        job_line(rasters, tiny_model, tmp_path / "b.tif", optical=str(tmp_path / "missing.tif")),
        '{"algorithm": "dbcr"}',
        job_line(rasters, tiny_model, tmp_path / "c.tif"),
    ]
    text = serve(lines, cache=cache)
    done = answers(text)
    assert [event.kind for event in done] == ["finished", "error", "error", "error", "finished"]
    assert "Not a JSON job" in done[1].get("message")
    assert done[2].get("code") == "unreadable_file"
    assert "no optical" in done[3].get("message")
    assert cache.loads == 1 and cache.hits == 1
    assert text.count("Loaded model tiny") == 1 and text.count("Model tiny is already loaded") == 1
    with rasterio.open(tmp_path / "a.tif") as first, rasterio.open(tmp_path / "c.tif") as second:
        np.testing.assert_array_equal(first.read(), second.read())


def waits_for_stop(job, reporter, should_stop):
    """A stand-in job that runs until it is told to stop (or 10 s)."""
    reporter.emit("started", algorithm=job.algorithm, tiles=1)
    if job.output.endswith("interrupt.tif"):
        os.kill(os.getpid(), signal.SIGINT)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if should_stop():
            reporter.emit("cancelled")
            return 130
        time.sleep(0.01)
    reporter.emit("finished", output=job.output, stats={})
    return 0


class Cancelling(io.StringIO):
    """stdin that sends a cancel once the first job has started, then one more job."""

    def __init__(self, first, second, started):
        super().__init__()
        self.lines = [first, '{"cancel": true}', second]
        self.started = started

    def __iter__(self):
        yield self.lines[0] + "\n"
        assert self.started.wait(10)
        yield from (line + "\n" for line in self.lines[1:])


def test_cancel_line_stops_the_job_not_the_worker(tmp_path):
    started = threading.Event()

    def execute(job, reporter, should_stop):
        started.set()
        if job.output.endswith("second.tif"):
            reporter.emit("finished", output=job.output, stats={})
            return 0
        return waits_for_stop(job, reporter, should_stop)

    base = {"algorithm": "dbcr", "optical": "in.tif"}
    stdin = Cancelling(
        json.dumps({**base, "output": "first.tif"}), json.dumps({**base, "output": "second.tif"}), started
    )
    out = io.StringIO()
    ServeLoop(Reporter(events=True, out=out), ModelCache(), execute).run(stdin)
    assert [event.kind for event in answers(out.getvalue())] == ["cancelled", "finished"]


def test_a_job_deaf_to_its_stop_is_interrupted_after_the_grace_period(tmp_path):
    started = threading.Event()

    def execute(job, reporter, should_stop):
        started.set()
        if job.output.endswith("second.tif"):
            reporter.emit("finished", output=job.output, stats={})
            return 0
        time.sleep(30)  # one long network call: it never looks at should_stop
        reporter.emit("finished", output=job.output, stats={})
        return 0

    base = {"algorithm": "dbcr", "optical": "in.tif"}
    stdin = Cancelling(
        json.dumps({**base, "output": "first.tif"}), json.dumps({**base, "output": "second.tif"}), started
    )
    out = io.StringIO()
    began = time.monotonic()
    ServeLoop(Reporter(events=True, out=out), ModelCache(), execute).run(stdin)
    assert [event.kind for event in answers(out.getvalue())] == ["cancelled", "finished"]
    assert time.monotonic() - began < 10


def test_sigint_stops_the_job_not_the_worker():
    base = {"algorithm": "dbcr", "optical": "in.tif"}
    lines = [json.dumps({**base, "output": "interrupt.tif"}), json.dumps({**base, "output": "interrupt.tif"})]
    previous = signal.getsignal(signal.SIGINT)
    text = serve(lines, execute=waits_for_stop)
    assert [event.kind for event in answers(text)] == ["cancelled", "cancelled"]
    assert signal.getsignal(signal.SIGINT) is previous


def test_serve_command_keeps_the_model_loaded(rasters, tiny_model, tmp_path):
    lines = [job_line(rasters, tiny_model, tmp_path / f"{name}.tif") for name in ("a", "b")]
    process = subprocess.run(
        [sys.executable, "-m", "backend", "serve"], input="\n".join(lines) + "\n", cwd=ROOT, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    events = [decode_event(line) for line in process.stdout.splitlines()]
    assert all(events), process.stdout
    assert events[0].get("message") == READY_MESSAGE
    assert [event.get("output") for event in answers(process.stdout)] == [
        str(tmp_path / "a.tif"),
        str(tmp_path / "b.tif"),
    ]
    assert process.stdout.count("Loaded model tiny") == 1


def test_a_crash_outside_the_job_is_answered_and_the_worker_goes_on():
    def execute(job, reporter, should_stop):
        if job.output == "crash.tif":
            raise ValueError("boom")
        reporter.emit("finished", output=job.output, stats={})
        return 0

    base = {"algorithm": "dbcr", "optical": "in.tif"}
    text = serve([json.dumps({**base, "output": name}) for name in ("crash.tif", "fine.tif")], execute=execute)
    crash, fine = answers(text)
    assert crash.get("code") == "internal" and "ValueError: boom" in crash.get("message")
    assert fine.kind == "finished"
