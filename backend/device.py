"""Choose the compute device and the number of CPU threads for the network."""

from __future__ import annotations

import os

import torch

from backend.errors import DeviceError


def choose_device(name: str) -> torch.device:
    """Resolve ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to an available torch device.

    Raises:
        DeviceError: CUDA was asked for but is not available, or the GPU index does not exist.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not name.startswith("cuda"):
        raise DeviceError(f"Unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(
            "CUDA was requested but this backend has no usable NVIDIA GPU (no driver, or a CPU-only torch); "
            "choose the device 'auto' or 'cpu'"
        )
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(
            f"GPU {device.index} does not exist; this machine has {torch.cuda.device_count()} (numbered from 0)"
        )
    return device


def available_cores() -> int:
    """CPU cores this process may run on (respects affinity masks and containers' CPU sets)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """All cores but one, so QGIS's interface stays responsive while the backend computes."""
    return max(1, available_cores() - 1)


def configure_threads(threads: int | None) -> int:
    """Set torch's CPU threads (None = :func:`default_threads`) and return the number used."""
    count = threads or default_threads()
    torch.set_num_threads(count)
    return count
