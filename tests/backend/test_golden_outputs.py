"""Each method's output on the bundled samples, pixel for pixel as recorded: refactors must not change a pixel.

The recorded GeoTIFFs in ``tests/data/golden/`` were written by the shipped models with the settings below; the
test runs the same job again and compares every pixel. After a deliberate change of a model or of a method's
numerics, record them again: ``.venv/bin/python tests/backend/test_golden_outputs.py --record``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden"
S2 = "sample/ROIs1868_summer_s2_cloudy_19_p30.tif"
S1 = "sample/ROIs1868_summer_s1_19_p30.tif"
RGB = "sample/rice2_249_cloudy.png"

# name -> backend run arguments; every setting a default could change is spelled out.
CASES: dict[str, list[str]] = {
    "dbcr": ["run", "dbcr", "--optical", S2, "--sar", S1, "--nfe", "1", "--no-keep-clear"],
    "diffcr": ["run", "diffcr", "--optical", S2, "--nfe", "2", "--no-keep-clear"],  # optical only
    "de": ["run", "de", "--optical", RGB, "--nfe", "10", "--no-keep-clear"],
}
COMMON = ["--threads", "1", "--seed", "0", "--runtime", "torch", "--device", "cpu"]


def run_case(name: str, output: Path) -> None:
    """Run one case through ``python -m backend`` (as the plugin does) into ``output``."""
    command = [sys.executable, "-m", "backend", *CASES[name], *COMMON, "--output", str(output)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def read_pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read()


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_matches_the_recorded_one(name: str, tmp_path: Path) -> None:
    output = tmp_path / f"{name}.tif"
    run_case(name, output)
    got, want = read_pixels(output), read_pixels(GOLDEN / f"{name}.tif")
    assert got.shape == want.shape and got.dtype == want.dtype
    differing = np.count_nonzero(got != want)
    assert differing == 0, f"{differing} of {got.size} values differ (max {np.abs(got.astype(float) - want).max()})"


def record() -> None:
    """Write the golden outputs anew (run only after a deliberate change of the numbers)."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        scratch = GOLDEN / f"{name}.new.tif"
        run_case(name, scratch)
        shutil.move(scratch, GOLDEN / f"{name}.tif")
        print(f"recorded {name}")


if __name__ == "__main__":
    if "--record" not in sys.argv:
        sys.exit("usage: test_golden_outputs.py --record")
    record()
