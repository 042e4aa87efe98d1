"""Where a model's network runs: torch, or ONNX Runtime on a graph exported once per weights file and tile size.

With ``onnxruntime`` one denoiser step of the network (its forward pass) is exported to ONNX for the job's tile
size, with a dynamic batch axis, and cached under :func:`cache_dir` as ``<sha256 of the weights>-<tile>.onnx``; the
model card travels in the file's metadata. The samplers stay in Python and call the session through
``models.onnx_step.OnnxModule``, which takes the torch module's place, so both runtimes run the same sampler code
on the same position-seeded noise. ONNX Runtime uses its CUDA provider where it has one (device ``auto`` or
``cuda``), else the CPU; the sampler's own arithmetic stays on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend.errors import DeviceError, ModelError
from models.card import ModelCard, file_sha256

log = logging.getLogger(__name__)

# Overrides the cache folder (tests, shared installs); else $XDG_CACHE_HOME/cloud-removal, else ~/.cache/...
CACHE_ENV = "CLOUD_REMOVAL_CACHE"
CUDA_PROVIDER = "CUDAExecutionProvider"

Network = Callable[..., Any]


def cache_dir() -> Path:
    """The folder of exported ONNX graphs (created on first export)."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "cloud-removal")
    return Path(root) / "onnx"


def onnx_cache_path(weights: str | Path, tile: int) -> Path:
    """The cached graph of a weights file at a tile size: keyed by the file's checksum, not its name."""
    return cache_dir() / f"{file_sha256(weights)}-{tile}.onnx"


def ort_device(device: str) -> str:
    """The job's device (``auto``, ``cpu``, ``cuda``, ``cuda:N``) as ``models.onnx_step.open_session`` takes it."""
    return "cuda" if device.startswith("cuda") else device


def ort_device_label(device: str) -> str:
    """Where ONNX Runtime will run for the job's device, for messages: ``onnxruntime:cuda`` or ``onnxruntime:cpu``."""
    import onnxruntime as ort

    cuda = ort_device(device) != "cpu" and CUDA_PROVIDER in ort.get_available_providers()
    return f"onnxruntime:{'cuda' if cuda else 'cpu'}"


def export_network(network: nn.Module, card: ModelCard, tile: int, path: Path) -> Path:
    """Export one step of ``network`` at ``tile`` to ``path``, atomically (a killed export leaves no half file).

    Raises:
        ModelError: the export failed (the message names the model).
    """
    from models.onnx_step import export_step

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.onnx")
    log.info("Exporting model %s to ONNX for %d px tiles (once; cached in %s)", card.name, tile, path.parent)
    try:
        export_step(network.to("cpu").eval(), card, partial, tile)
        os.replace(partial, path)
    except Exception as error:
        raise ModelError(f"Cannot export model {card.name} to ONNX ({error}); run it with the torch runtime") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return path


def onnx_network(
    network: nn.Module, card: ModelCard, path: Path, tile: int, device: str = "auto", threads: int | None = None
) -> Network:
    """The network as an ONNX Runtime session at ``path``, exported first if the file is not there yet.

    Args:
        network: the loaded torch network (exported when needed).
        card: its card.
        path: the graph file (see :func:`onnx_cache_path`).
        tile: the graph's square tile side (pixels).
        device: the job's device.
        threads: ONNX Runtime's intra-op threads.

    Raises:
        DeviceError: CUDA was asked for and ONNX Runtime has no CUDA provider.
        ModelError: the export failed.
    """
    from models.onnx_step import OnnxModule, open_session
    from models.step_inputs import STEP_INPUTS

    if card.algorithm not in STEP_INPUTS:
        raise ModelError(f"Model {card.name} ({card.algorithm}) cannot run on ONNX Runtime; use the torch runtime")
    if not path.exists():
        export_network(network, card, tile, path)
    try:
        session = open_session(path, ort_device(device), threads)
    except RuntimeError as error:
        if "CUDA" in str(error):
            raise DeviceError(str(error)) from error
        log.warning("The cached ONNX graph %s cannot be opened (%s); exporting it again", path, error)
        export_network(network, card, tile, path)
        session = open_session(path, ort_device(device), threads)
    log.info("Model %s runs on ONNX Runtime (%s)", card.name, ", ".join(session.get_providers()))
    return OnnxModule(session)


def place_network(
    network: nn.Module,
    card: ModelCard,
    weights: Path | None,
    *,
    runtime: str,
    tile: int,
    torch_device: torch.device,
    device: str = "auto",
    threads: int | None = None,
) -> Network:
    """Make ``network`` ready to run: on ``torch_device`` (torch), or as a cached ONNX Runtime session.

    Args:
        network: the loaded network.
        card: its card.
        weights: its weights file (the ONNX cache key); None when the network no longer matches any file
            (adapted to a scene), so its graph is exported afresh and not cached.
        runtime: ``torch`` or ``onnxruntime``.
        tile: the job's tile size (the exported graph's).
        torch_device: where a torch network goes.
        device: the job's device (ONNX Runtime's provider choice).
        threads: ONNX Runtime's intra-op threads.
    """
    if runtime == "onnxruntime":
        if weights is not None:
            return onnx_network(network, card, onnx_cache_path(weights, tile), tile, device, threads)
        with tempfile.TemporaryDirectory(prefix="cloudremoval-") as folder:  # the session holds the graph in memory
            return onnx_network(network, card, Path(folder) / "adapted.onnx", tile, device, threads)
    placed: Network = network.to(torch_device).eval()
    return placed
