"""The real set-up, as a user of the plugin zip meets it: venv, pip, self-check, then a run. Opt-in.

It installs the backend's pinned requirements (about 1.7 GB; what pip does not find on disk it downloads), so it
runs only with ``CLOUDREMOVAL_REAL_SETUP=1``; ``scripts/real_setup_check.py`` does the work and is the way to run
it by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from qgis_support import REPO

pytestmark = pytest.mark.skipif(
    os.environ.get("CLOUDREMOVAL_REAL_SETUP") != "1",
    reason="the real set-up installs ~1.7 GB of packages: set CLOUDREMOVAL_REAL_SETUP=1 to run it",
)


def test_the_zip_sets_up_its_backend_and_removes_clouds(tmp_path: Path) -> None:
    archive = tmp_path / "cloud_removal.zip"
    subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "--output", str(archive)], check=True)
    root, summary = tmp_path / "qgis profiles", tmp_path / "summary.json"  # a space, as on Windows profiles
    script = [sys.executable, str(REPO / "scripts" / "real_setup_check.py"), "--zip", str(archive),
              "--root", str(root), "--summary", str(summary)]  # fmt: skip
    try:
        completed = subprocess.run(script, capture_output=True, text=True, timeout=3600, check=False)
        assert summary.exists(), completed.stdout[-4000:] + completed.stderr[-4000:]
        result = json.loads(summary.read_text())
        setup = result["setup"]
        assert setup["ok"], setup["why"]
        assert setup["torch"].split("+")[0] == "2.13.0"  # the pin, not whatever PyPI has newest
        assert Path(setup["python"]).is_relative_to(root / "profiles" / "default" / "cloud_removal" / "venv")
        assert result["run"]["ok"], completed.stdout[-4000:]
        assert result["qgis_process"]["ok"], completed.stdout[-4000:]
        assert completed.returncode == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)  # the environment is large
