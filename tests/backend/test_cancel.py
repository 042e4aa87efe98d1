import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from backend.protocol import EXIT_CANCELLED, decode_event
from backend.worker import CANCEL_GRACE_S

ROOT = Path(__file__).resolve().parents[2]

# A worker stuck inside one long network call: the signal handler alone could not stop it before the call ends.
STUCK_WORKER = """
import sys, time
from backend.protocol import encode_event
from backend.worker import cancel_on_signals
partial = sys.argv[1]
open(partial, "w").write("half a GeoTIFF")
with cancel_on_signals(partial, lambda: print(encode_event("cancelled"), flush=True)):
    print(encode_event("started", tiles=1), flush=True)
    time.sleep(60)
"""


def test_cancel_stops_a_stuck_worker_within_the_grace_period(tmp_path):
    partial = tmp_path / "out.tif.partial"
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_WORKER, str(partial)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert decode_event(process.stdout.readline()).kind == "started"
    asked = time.monotonic()
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    elapsed = time.monotonic() - asked
    assert process.returncode == EXIT_CANCELLED
    assert elapsed < CANCEL_GRACE_S + 1.5
    assert decode_event(rest.splitlines()[-1]).kind == "cancelled"
    assert not os.path.exists(partial)
