"""Export one denoiser step of a network to ONNX (static tile, dynamic batch) and run it with ONNX Runtime.

The exported graph is the network's forward only; samplers stay in Python and call it through ``OnnxModule``,
which has the torch module's call signature, so the denoiser adapters (``models.denoisers``) work
on either runtime. The model card travels in the ONNX ``metadata_props`` under ``model_card``.

Uses the TorchScript exporter (``dynamo=False``): the torch.export-based default needs onnxscript, which the
backend environment does not ship.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from models.card import CARD_KEY, ModelCard
from models.step_inputs import STEP_INPUTS

OPSET = 17
# ONNX element types of the inputs we feed, mapped to numpy.
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(double)": np.float64}


def export_onnx(
    module: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: str | Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    card: ModelCard | None = None,
    dynamic_batch: bool = True,
) -> Path:
    """Export ``module(*example_inputs)`` with the examples' shapes fixed except, optionally, the batch axis.

    Args:
        module: any network whose forward takes tensors and returns a tensor or a tuple of tensors.
        example_inputs: one example per input; their shapes (but batch) become the graph's static shapes.
        path: the ``.onnx`` file to write.
        input_names: names of the graph inputs, in call order.
        output_names: names of the graph outputs.
        card: written into ``metadata_props['model_card']`` when given.
        dynamic_batch: make axis 0 of every input and output dynamic.

    Returns:
        The path written.
    """
    out = Path(path)
    axes = {name: {0: "batch"} for name in (*input_names, *output_names)} if dynamic_batch else None
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is deprecated, still works
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks freeze: the tile is static
            torch.onnx.export(
                module,
                example_inputs,
                str(out),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        module.train(was_training)
    if card is not None:
        model = onnx.load(str(out))
        entry = model.metadata_props.add()
        entry.key, entry.value = CARD_KEY, card.to_json()
        onnx.save(model, str(out))
    return out


def read_onnx_card(path: str | Path) -> ModelCard | None:
    """The card stored in an exported model, or None."""
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.metadata_props:
        if entry.key == CARD_KEY:
            return ModelCard.from_json(entry.value)
    return None


def open_session(path: str | Path, device: str = "auto", threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime session: CUDA first when available (``auto``) or required (``cuda``), CPU otherwise.

    Args:
        path: the ``.onnx`` file.
        device: ``auto``, ``cuda`` or ``cpu``.
        threads: intra-op threads (None: ONNX Runtime's default).

    Returns:
        The session.

    Raises:
        RuntimeError: if ``cuda`` is asked for and ONNX Runtime has no CUDA provider.
    """
    options = ort.SessionOptions()
    # Idle worker threads must not spin: the plugin shares the machine with QGIS and other jobs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
    providers = []
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.append("CUDAExecutionProvider")
    elif device == "cuda":
        raise RuntimeError("ONNX Runtime has no CUDA provider here; install onnxruntime-gpu or choose the CPU")
    providers.append("CPUExecutionProvider")
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


class OnnxModule:
    """An ONNX Runtime session called like the torch module it was exported from.

    ``OnnxModule(session)(*tensors)`` returns a tensor (one output) or a tuple of tensors, on the device of the
    first input; inputs are cast to the graph's declared types (e.g. integer timesteps to float).
    """

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.inputs = session.get_inputs()
        self.output_names = [o.name for o in session.get_outputs()]

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Run the graph on torch tensors."""
        feeds = {
            spec.name: tensor.detach().cpu().numpy().astype(_ORT_DTYPES.get(spec.type, np.float32), copy=False)
            for spec, tensor in zip(self.inputs, tensors, strict=True)
        }
        outputs = [torch.from_numpy(np.asarray(o)).to(tensors[0].device) for o in self.session.run(None, feeds)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def export_step(network: nn.Module, card: ModelCard, path: str | Path, tile: int | None = None, batch: int = 1) -> Path:
    """Export one denoiser step of a DiffCR or DE network at the card's tile size (or ``tile``).

    Args:
        network: the loaded network.
        card: its card (algorithm, config, tile size); stored in the ONNX metadata.
        path: the ``.onnx`` file to write.
        tile: square tile side in pixels (default ``card.tile_size``).
        batch: the example batch (the exported batch axis stays dynamic).

    Returns:
        The path written.

    Raises:
        ValueError: for an algorithm without a step definition here.
    """
    if card.algorithm not in STEP_INPUTS:
        raise ValueError(f"no ONNX step definition for {card.algorithm!r}; call export_onnx with example inputs")
    inputs, input_names, output_names = STEP_INPUTS[card.algorithm](card.config, batch, tile or card.tile_size)
    device = next(network.parameters()).device
    inputs = tuple(x.to(device) for x in inputs)
    return export_onnx(network, inputs, path, input_names=input_names, output_names=output_names, card=card)
