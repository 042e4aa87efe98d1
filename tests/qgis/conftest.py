"""Real QGIS, headless, with the plugin loaded from a throwaway profile (never the user's).

pytest-qgis starts a QgsApplication for the in-process tests. For qgis_process runs, ``scripts/qgis_sandbox.py``
links the repository as the plugin ``cloud_removal`` into a temporary plugin folder and enables it in a temporary
profile; the same folder is put on ``sys.path`` so the tests import the plugin under the name QGIS gives it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).absolute().parent))
# QGIS stores the histograms it computes (styling, statistics) beside the rasters, in .aux.xml files; the tests
# must not change the repository's sample, so GDAL keeps them in memory (this process, qgis_process, QGIS, backend).
os.environ["GDAL_PAM_ENABLED"] = "NO"

from qgis_support import REPO, QgisProcessResult, sandbox


@pytest.fixture(scope="session")
def sandbox_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for qgis_process: the plugin linked as ``cloud_removal`` and enabled in a fresh profile."""
    root = tmp_path_factory.mktemp("qgis-sandbox")
    environment = sandbox.prepare(root, REPO)
    environment.pop("CLOUD_REMOVAL_PYTHON", None)
    plugins = environment["QGIS_PLUGINPATH"]
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    return environment


@pytest.fixture(scope="session")
def plugin_package(sandbox_env: dict[str, str]) -> ModuleType:
    """The plugin imported the way QGIS imports it: as the package ``cloud_removal``."""
    import cloud_removal

    return cloud_removal


@pytest.fixture
def provider(qgis_processing: None, plugin_package: ModuleType) -> Iterator[Any]:
    """The plugin's provider, registered in the in-process Processing registry for one test."""
    from cloud_removal.processing_provider.provider import CloudRemovalProvider
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    provider = CloudRemovalProvider()
    assert registry.addProvider(provider)
    yield provider
    registry.removeProvider(CloudRemovalProvider.ID)


@pytest.fixture
def qgis_process(sandbox_env: dict[str, str]) -> Any:
    """Run ``qgis_process.bin`` in the sandbox: ``qgis_process("run", alg, "--", "A=1", env={...})``."""

    def run(*arguments: str, env: dict[str, str] | None = None, timeout: float = 300) -> QgisProcessResult:
        completed = subprocess.run(
            [sandbox.QGIS_PROCESS, *arguments],
            env={**sandbox_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return QgisProcessResult(completed)

    return run


@pytest.fixture(scope="session")
def shipped_dbcr_model() -> Path:
    """The shipped DB-CR weights, which the real-backend tests run: missing weights are a failure, not a skip."""
    weights = Path(__file__).resolve().parents[2] / "models" / "weights" / "dbcr-lite.safetensors"
    assert weights.is_file(), f"{weights} is missing: the shipped model must be committed"
    return weights
