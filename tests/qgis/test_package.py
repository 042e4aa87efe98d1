"""``make package``: the zip the QGIS plugin repository accepts (one top folder, no binaries, at most 25 MB)."""

from __future__ import annotations

import configparser
import importlib.util
import os
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from qgis_support import REPO


def load_packager() -> ModuleType:
    spec = importlib.util.spec_from_file_location("package", REPO / "scripts" / "package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    output = tmp_path_factory.mktemp("dist") / "cloud_removal.zip"
    load_packager().build(output)
    with zipfile.ZipFile(output) as archive:
        return output, archive.namelist()


def test_the_zip_has_one_top_folder_and_the_plugin(built: tuple[Path, list[str]]) -> None:
    output, names = built
    assert {name.split("/")[0] for name in names} == {"cloud_removal"}
    for required in ("metadata.txt", "__init__.py", "plugin/dock.py", "plugin/backend_setup.py",
                     "processing_provider/icons/cloud_removal.svg", "processing_provider/icons/dbcr.svg",
                     "processing_provider/diffcr.py", "processing_provider/cloudmask.py", "backend/protocol.py",
                     "backend/requirements.txt", "backend/requirements-nodeps.txt", "models/registry.py"):  # fmt: skip
        assert f"cloud_removal/{required}" in names, required
    assert output.stat().st_size <= 25 * 1024 * 1024


def test_the_zip_has_no_binaries_environments_tests_or_caches(built: tuple[Path, list[str]]) -> None:
    _, names = built
    for name in names:
        parts = Path(name).parts
        assert not {".venv", ".venv-qgis", ".git", "__pycache__", "tests", "runs", ".qgis-settings"} & set(parts), name
        assert Path(name).suffix not in {".pyc", ".so", ".pyd", ".dll", ".exe", ".pt", ".onnx", ".zip"}, name


def test_shipped_weights_go_in(built: tuple[Path, list[str]]) -> None:
    _, names = built
    shipped = sorted(path.name for path in (REPO / "models" / "weights").glob("*.safetensors"))
    archived = sorted(Path(name).name for name in names if name.endswith(".safetensors"))
    total = sum((REPO / "models" / "weights" / name).stat().st_size for name in shipped)
    if total < 20 * 1024 * 1024:
        assert archived == shipped


def test_weights_that_would_pass_the_limit_are_left_out(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "models" / "weights").mkdir(parents=True)
    (repo / "metadata.txt").write_text("[general]\nname=x\n")
    (repo / "__init__.py").write_text("")
    (repo / "LICENSE").write_text("GPL")
    for name in ("zz-big", "dbcr-lite"):
        (repo / "models" / "weights" / f"{name}.safetensors").write_bytes(os.urandom(700_000))
    output = tmp_path / "out.zip"
    names, warnings = load_packager().build(output, repo, limit=2 * 1024 * 1024)
    assert "models/weights/dbcr-lite.safetensors" in names  # the default model comes first
    assert "models/weights/zz-big.safetensors" not in names
    assert warnings == ["zz-big.safetensors left out: the zip would pass 2 MB"]


def test_metadata_is_complete_for_the_repository() -> None:
    metadata = configparser.ConfigParser()
    metadata.read(REPO / "metadata.txt", encoding="utf-8")
    general = metadata["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "tracker",
                "repository", "tags", "changelog", "icon", "category"):  # fmt: skip
        assert general.get(key, "").strip(), key
    assert general["hasProcessingProvider"] == "yes" and general["supportsQt6"] == "True"
    for method in ("DB-CR", "DiffCR", "DE", "s2cloudless"):
        assert method in general["about"]


def test_a_missing_icon_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "processing_provider" / "icons").mkdir(parents=True)
    (repo / "metadata.txt").write_text("[general]\nname=x\nicon=processing_provider/icons/cloud_removal.svg\n")
    (repo / "__init__.py").write_text("")
    (repo / "processing_provider" / "icons" / "dbcr.svg").write_text("<svg/>")
    packager = load_packager()
    assert packager.icons(repo) == ["processing_provider/icons/cloud_removal.svg", "processing_provider/icons/dbcr.svg"]
    with pytest.raises(SystemExit, match=r"the icon processing_provider/icons/cloud_removal\.svg is missing"):
        packager.build(tmp_path / "out.zip", repo)
    (repo / "processing_provider" / "icons" / "cloud_removal.svg").write_text("<svg/>")
    names, _ = packager.build(tmp_path / "out.zip", repo)
    assert "processing_provider/icons/dbcr.svg" in names
