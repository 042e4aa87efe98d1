"""Declaring Processing parameters from the backend's table of run settings, shared by every algorithm.

A number parameter takes its bounds from a run setting (``backend/protocol.py``, ``RUN_SETTINGS``), so the toolbox,
the panel and the backend accept the same values; the device and runtime choices are the setting's own, labelled
for people; an enum parameter starts on a stored choice; an advanced one sits under "Advanced parameters".
"""

from __future__ import annotations

from typing import Any, TypeVar

from qgis.core import QgsProcessingParameterDefinition, QgsProcessingParameterEnum, QgsProcessingParameterNumber

from ..backend.protocol import RUN_SETTINGS, Setting
from .compat import DOUBLE, FLAG_ADVANCED, INTEGER

DEVICE_LABELS = {"auto": "Automatic (GPU when available)", "cpu": "CPU", "cuda": "GPU (CUDA)"}
RUNTIME_LABELS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
DEVICES = tuple((key, DEVICE_LABELS[key]) for key in RUN_SETTINGS["device"].choices)
"""The device setting's choices as (backend key, label), in the order of the enum parameter's options."""
RUNTIMES = tuple((key, RUNTIME_LABELS[key]) for key in RUN_SETTINGS["runtime"].choices)
"""The runtime setting's choices as (backend key, label), in the order of the enum parameter's options."""

Parameter = TypeVar("Parameter", bound=QgsProcessingParameterDefinition)


def number_parameter(
    key: str, description: str, setting: Setting, default: Any, optional: bool = False, minimum: Any = None
) -> QgsProcessingParameterNumber:
    """A number parameter with the bounds of a run setting (``minimum``: a lower "no value", e.g. tile size 0)."""
    kind = DOUBLE if setting.kind is float else INTEGER
    low = setting.minimum if minimum is None else minimum
    parameter = QgsProcessingParameterNumber(key, description, kind, default, optional)
    if low is not None:
        parameter.setMinimum(low)
    if setting.maximum is not None:
        parameter.setMaximum(setting.maximum)
    return parameter


def choice_parameter(
    key: str, description: str, options: tuple[tuple[str, str], ...], chosen: str
) -> QgsProcessingParameterEnum:
    """An enum parameter of ``options`` (key, label) showing the labels, starting on the key ``chosen``."""
    labels = [label for _, label in options]
    return QgsProcessingParameterEnum(key, description, labels, False, option_index(options, chosen))


def option_index(options: tuple[tuple[str, str], ...], value: str) -> int:
    """The index of the option whose key is ``value``; 0 (the first) when none is."""
    return next((index for index, (key, _) in enumerate(options) if key == value), 0)


def advanced(parameter: Parameter) -> Parameter:
    """Mark ``parameter`` advanced (shown under "Advanced parameters") and return it."""
    parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
    return parameter
