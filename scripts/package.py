#!/usr/bin/python3
"""Build ``dist/cloud_removal.zip``, the plugin as the QGIS plugin repository (plugins.qgis.org) accepts it.

The repository's rules: one top folder named like the plugin (``cloud_removal/``), ``metadata.txt`` and
``__init__.py`` in it, a LICENSE file, at most 25 MB, and no binaries (no compiled Python, shared libraries or
executables; no virtual environments). The files come from git (tracked, or new and not ignored), so nothing a
developer's machine collects (``.venv``, caches, runs) can slip in; tests and CI files are left out. Shipped model
weights (``models/weights/*.safetensors``) go in while the zip stays under the limit, the default models first.

Usage: ``scripts/package.py [--output dist/cloud_removal.zip]`` (``make package``). Standard library only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).absolute().parent.parent
PLUGIN_NAME = "cloud_removal"
MAX_BYTES = 25 * 1024 * 1024
EXCLUDED_DIRS = {
    ".git", ".venv", ".venv-qgis", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".qgis-settings",
    ".ci", ".github", "runs", "dist", "build", "demo-output", "tests",
}  # fmt: skip
# Binaries the repository rejects, and files that are never part of the plugin.
EXCLUDED_SUFFIXES = {
    ".pyc", ".pyo", ".so", ".pyd", ".dll", ".dylib", ".exe", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".partial",
    ".zip", ".whl",
}  # fmt: skip
EXCLUDED_NAMES = {".DS_Store", "Thumbs.db", ".gitignore", ".gitattributes"}
WEIGHTS_DIR = "models/weights"
DEFAULT_WEIGHTS = ("dbcr-lite", "diffcr-lite", "de-lite")


def candidate_files(repo: Path = REPO) -> list[str]:
    """Return the repository's files (relative, POSIX) that git tracks or would track."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=repo,
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8")
        files = [name for name in listing.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the folder
        files = [path.relative_to(repo).as_posix() for path in repo.rglob("*") if path.is_file()]
    return sorted(name for name in set(files) if (repo / name).is_file())


def wanted(name: str) -> bool:
    """Return True when a repository file belongs in the plugin zip (weights are decided separately)."""
    path = Path(name)
    if any(part in EXCLUDED_DIRS or part.startswith(".venv") for part in path.parts[:-1]):
        return False
    if path.name in EXCLUDED_NAMES or path.suffix.lower() in EXCLUDED_SUFFIXES:
        return False
    if path.suffix == ".safetensors":
        return False
    return not (path.parts[0] == "docs" and path.suffix.lower() in (".png", ".jpg", ".gif"))


def icons(repo: Path = REPO) -> list[str]:
    """Return the icons the plugin needs: the one ``metadata.txt`` names, and the algorithms' icons."""
    lines = (repo / "metadata.txt").read_text(encoding="utf-8").splitlines()
    named = [line.split("=", 1)[1].strip() for line in lines if line.startswith("icon=")]
    provider = sorted(
        path.relative_to(repo).as_posix() for path in (repo / "processing_provider" / "icons").glob("*.svg")
    )
    return [*named, *provider]


def weights_in_order(repo: Path = REPO) -> list[Path]:
    """Return the shipped weight files, default models first."""
    files = sorted((repo / WEIGHTS_DIR).glob("*.safetensors"))
    rank = {name: index for index, name in enumerate(DEFAULT_WEIGHTS)}
    return sorted(files, key=lambda path: (rank.get(path.stem, len(rank)), path.name))


def build(output: Path, repo: Path = REPO, limit: int = MAX_BYTES) -> tuple[list[str], list[str]]:
    """Write the zip; return the archived names and the warnings.

    Raises:
        SystemExit: a rule of the plugin repository is broken (the message says which).
    """
    names = [name for name in candidate_files(repo) if wanted(name)]
    for required in ("metadata.txt", "__init__.py"):
        if required not in names:
            raise SystemExit(f"package: {required} is missing from the plugin folder")
    for required in icons(repo):  # the plugin's own, and the Processing algorithms' (processing_provider/icons)
        if required not in names:
            raise SystemExit(f"package: the icon {required} is missing from the plugin folder")
    warnings = []
    if not any(name.split("/")[0].upper().startswith(("LICENSE", "LICENCE", "COPYING")) for name in names):
        warnings.append("no LICENSE file at the top: plugins.qgis.org rejects plugins without one")
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".zip.partial")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in names:
            archive.write(repo / name, f"{PLUGIN_NAME}/{name}")
        for weights in weights_in_order(repo):
            name = f"{PLUGIN_NAME}/{weights.relative_to(repo).as_posix()}"
            before = temporary.stat().st_size
            if before + weights.stat().st_size + 1024 * 1024 > limit:  # weights barely compress
                warnings.append(f"{weights.name} left out: the zip would pass {limit / 2**20:.0f} MB")
                continue
            archive.write(weights, name)
            names.append(weights.relative_to(repo).as_posix())
    size = temporary.stat().st_size
    if size > limit:
        temporary.unlink()
        raise SystemExit(f"package: the zip is {size / 2**20:.1f} MB, over the {limit / 2**20:.0f} MB limit")
    temporary.replace(output)
    return names, warnings


def main(arguments: list[str]) -> int:
    """Build the zip and print what went in."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=REPO / "dist" / f"{PLUGIN_NAME}.zip")
    args = parser.parse_args(arguments)
    names, warnings = build(args.output)
    weights = [name for name in names if name.endswith(".safetensors")]
    print(f"{args.output}: {len(names)} files, {args.output.stat().st_size / 2**20:.1f} MB")
    print(f"weights: {', '.join(Path(name).stem for name in weights) or 'none'}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
