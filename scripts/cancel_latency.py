"""How fast a cancel ends a run: SIGTERM to ``backend run`` in the middle of a 2048 x 2048 raster.

Run with the backend's Python from the repository root: ``.venv/bin/python scripts/cancel_latency.py``.
It mosaics the bundled sample to 2048 x 2048 (as ``make bench`` does), starts DB-CR with its shipped model, sends
SIGTERM once half the tiles are done (``--at``), and prints the seconds from the signal until the process has exited,
and whether any file (output or ``.partial``) was left. ``--method`` picks another method (DiffCR, DE at NFE 10).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.commands.bench import mirrored_mosaic  # noqa: E402
from backend.protocol import decode_event  # noqa: E402


def measure(method: str, size: int, at: float, folder: Path) -> dict[str, object]:
    """Run, cancel at the ``at`` share of tiles, and time the end."""
    optical = mirrored_mosaic(str(ROOT / "sample" / "ROIs1868_summer_s2_cloudy_19_p30.tif"), size, f"{folder}/s2.tif")
    sar = mirrored_mosaic(str(ROOT / "sample" / "ROIs1868_summer_s1_19_p30.tif"), size, f"{folder}/s1.tif")
    output = folder / "out.tif"
    command = [sys.executable, "-m", "backend", "run", method, "--optical", optical, "--output", str(output)]
    command += ["--sar", sar] if method != "de" else []
    command += ["--device", "cpu", "--events"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        event = decode_event(line)
        if event is not None and event.kind == "progress" and event.get("done") >= at * event.get("total"):
            break
    asked = time.monotonic()
    process.send_signal(signal.SIGTERM)
    last, answered = None, None
    for line in process.stdout:
        last = decode_event(line) or last
        if last is not None and last.kind == "cancelled":
            answered = time.monotonic() - asked
    process.wait()
    seconds = time.monotonic() - asked
    left = sorted(path.name for path in folder.iterdir() if path.name.startswith("out"))
    return {
        "method": method,
        "size": size,
        "seconds_to_cancelled_event": round(answered, 3) if answered is not None else None,
        "seconds_to_exit": round(seconds, 3),
        "exit_code": process.returncode,
        "last_event": last.kind if last else None,
        "files_left": left,
    }


def main() -> None:
    """Parse the options, measure, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="dbcr", choices=("dbcr", "diffcr"))
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--at", type=float, default=0.5, help="share of tiles done when the signal is sent")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        print(json.dumps(measure(args.method, args.size, args.at, Path(scratch))))


if __name__ == "__main__":
    main()
