"""The rooms' boundaries, read off the import statements: no arrow runs back up (see README, "Layout").

QGIS side -> backend protocol only; backend commands -> backend core -> models; models never import the backend;
networks know nothing of samplers or adapters; samplers know nothing of networks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("backend", "models", "processing_provider", "plugin")
QGIS_SIDE = ("processing_provider", "plugin")
HEAVY = ("torch", "rasterio", "onnxruntime", "numpy", "s2cloudless", "safetensors")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    """Every module a file imports, absolute (relative imports resolved against the file's package)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if node.level and not node.module:
                yield from (f"{module}.{alias.name}" for alias in node.names)
            else:
                yield module
                yield from (f"{module}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            edges[module_name(path)] = set(imports(path))
    return edges


EDGES = graph()


def offenders(source_prefix: str, target_prefixes: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for module, targets in EDGES.items():
        if module != source_prefix and not module.startswith(source_prefix + "."):
            continue
        for target in targets:
            hits = any(target == prefix or target.startswith(prefix + ".") for prefix in target_prefixes)
            if hits and not any(target == ok or target.startswith(ok + ".") for ok in allowed):
                found.append(f"{module} -> {target}")
    return sorted(found)


def test_the_graph_was_read():
    assert "backend.worker" in EDGES and "backend.job" in EDGES["backend.worker"]


def test_models_never_import_the_backend_or_qgis():
    assert offenders("models", ("backend", "qgis", *QGIS_SIDE)) == []


def test_the_backend_never_imports_qgis():
    assert offenders("backend", ("qgis", *QGIS_SIDE)) == []


@pytest.mark.parametrize(
    "core", sorted({m for m in EDGES if m.startswith("backend.") and not m.startswith("backend.commands")})
)
def test_the_core_never_imports_a_command(core):
    assert [edge for edge in offenders(core, ("backend.commands",)) if edge.startswith(core + " ")] == []


def test_networks_know_no_samplers_adapters_or_restorers():
    assert offenders("models.networks", ("models.sampling", "models.denoisers", "models.restorers")) == []


def test_samplers_know_no_networks():
    assert offenders("models.sampling", ("models.networks", "models.denoisers", "models.restorers")) == []


@pytest.mark.parametrize("room", QGIS_SIDE)
def test_the_qgis_side_imports_only_the_protocol_of_the_backend(room):
    # ``from ..backend import protocol`` also names the package itself, whose __init__ imports nothing
    backend = [edge for edge in offenders(room, ("backend",), ("backend.protocol",)) if not edge.endswith("> backend")]
    assert backend == []
    assert offenders(room, (*HEAVY, "models")) == []


def test_processing_provider_never_imports_the_gui_folder():
    assert offenders("processing_provider", ("plugin",)) == []
