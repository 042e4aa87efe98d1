import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from backend.cancel import GRACE_S, cancel_on_signals
from backend.errors import CancelledError
from backend.job import Job
from backend.protocol import EXIT_CANCELLED, decode_event
from backend.worker import load_restorer

ROOT = Path(__file__).resolve().parents[2]


def test_the_first_signal_asks_the_second_stops_where_it_is():
    with cancel_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.is_set()
        with pytest.raises(CancelledError):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here, long before the sleep ends


def test_a_run_still_busy_after_the_grace_period_is_stopped_where_it_is():
    started = time.monotonic()
    with pytest.raises(CancelledError), cancel_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.is_set()
        time.sleep(10)  # a network call that would not return for a long time
    assert time.monotonic() - started < GRACE_S + 1.0


def test_a_run_that_stops_in_time_gets_no_second_signal():
    with cancel_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.is_set()
    time.sleep(GRACE_S + 0.3)  # the timer was cancelled: nothing is raised here


def test_signals_are_handed_back_after_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with cancel_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_worker_cancels_inside_the_sampler_after_one_network_call(tiny_model, tmp_path):
    job = Job(algorithm="dbcr", optical="x.tif", output=str(tmp_path / "o.tif"), model=tiny_model, nfe=8)
    calls = []

    def cancel(done: int, total: int) -> None:
        calls.append((done, total))
        raise CancelledError()

    restore, _ = load_restorer(job, torch.device("cpu"), callback=cancel)
    with pytest.raises(CancelledError):
        restore(torch.rand(1, 13, 32, 32), torch.rand(1, 2, 32, 32), [(0, 0)])
    assert calls == [(1, 8)]


def test_sigterm_in_a_long_batch_ends_the_run_with_nothing_left(tmp_path, tiny_model, kit):
    optical = kit.write_raster(tmp_path / "big.tif", kit.s2_dn(13, height=300, width=300))
    sar = kit.write_raster(tmp_path / "big_s1.tif", kit.s1_db(300, 300))
    output = tmp_path / "out.tif"
    command = [
        sys.executable, "-m", "backend", "run", "dbcr", "--optical", optical, "--sar", sar, "--model", tiny_model,
        "--output", str(output), "--nfe", "50", "--batch", "256", "--device", "cpu", "--threads", "1", "--events",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:  # one batch of every tile, 50 network calls: the signal lands inside it
        event = decode_event(line)
        if event is not None and event.kind == "started":
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    rest, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_CANCELLED, stderr
    assert decode_event(rest.splitlines()[-1]).kind == "cancelled"
    assert not output.exists()
    assert not list(tmp_path.glob("*.partial"))
