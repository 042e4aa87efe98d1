"""``python -m backend bench --per-tile``: seconds per tile of each method's restorer, torch against ONNX Runtime.

Each entry is a model name or weights file (its card and trained weights), or a bare config of the registry
(``dbcr-lite``, ``diffcr-lite``, ``de-lite``): an untrained network with a card made here, which times exactly
like a trained one (the arithmetic does not depend on the values). DE's reference network comes from the DE card,
or for a config from the matching ``de-reference-*`` config. Each method runs at its NFE (the card's default;
for configs DB-CR 1, DiffCR 21 as the official DiffCR cards, DE 10 as the official DE cards) on one tile per call
(batch 1), after one warm-up call (ONNX export and session start are not timed). The result is a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from backend.errors import BadInputError
from models.card import S1_BANDS, S2_L1C_BANDS, ModelCard
from models.sampling.schedule_configs import DESchedule, DiffCRSchedule, Schedule, Thresholding

# NFE of a bare config: what the cards of the official (or, for DB-CR, the paper's) models use.
CONFIG_NFE = {"dbcr": 1, "diffcr": 21, "de": 10}
_RGB_BANDS = ("B4", "B3", "B2", "B8")
_SCHEDULES: dict[str, Schedule] = {
    "diffcr": DiffCRSchedule("sigmoid", 1000, time_input="gamma", thresholding=Thresholding(0.995, 1.0)),
    "de": DESchedule("adm-linear", 1000, w_min=0.3),
}


@dataclass(frozen=True)
class Loaded:
    """A network ready to time: the network, its card, a cache key for ONNX, and whether its weights are trained."""

    network: torch.nn.Module
    card: ModelCard
    key: str
    trained: bool


def config_card(name: str, algorithm: str, config: dict[str, Any]) -> ModelCard:
    """A card for an untrained bare config: bands, scale and schedule as its method's models have them."""
    if algorithm == "dbcr":
        bands, sar = S2_L1C_BANDS[: config["optical_channels"]], S1_BANDS[: config["sar_channels"]]
    elif algorithm == "diffcr":
        bands = S2_L1C_BANDS if config["bands"] == 13 else _RGB_BANDS[: config["bands"]]
        sar = S1_BANDS[: config["sar_bands"]]
    else:  # de, de-reference
        bands, sar = _RGB_BANDS[: config["bands"]], ()
    scale = 10000.0 if len(bands) >= 12 else 255.0
    return ModelCard(
        name=name, algorithm=algorithm, config=config, optical_bands=bands, sar_bands=sar, optical_scale=scale,
        default_nfe=CONFIG_NFE.get(algorithm, 1), schedule=_SCHEDULES.get(algorithm),
        description="untrained network for timing",
    )  # fmt: skip


def load_entry(name: str) -> tuple[Loaded, Loaded | None]:
    """The network of a config name or model, and DE's reference network (None for other methods).

    Raises:
        BackendError: the name is neither a config nor a readable model.
    """
    from backend.worker import load_network, load_reference
    from models.registry import CONFIGS, build_network, shipped_models

    if name in CONFIGS and name not in shipped_models():  # a shipped model of that name is timed as shipped
        algorithm, config = CONFIGS[name]
        entry = Loaded(build_network(algorithm, config).eval(), config_card(name, algorithm, config), name, False)
        if algorithm != "de":
            return entry, None
        reference_name = name.replace("de-", "de-reference-", 1)
        if reference_name not in CONFIGS:
            raise BadInputError(f"Config {name} has no matching reference config {reference_name}")
        ref_algorithm, ref_config = CONFIGS[reference_name]
        ref_card = config_card(reference_name, ref_algorithm, ref_config)
        return entry, Loaded(build_network(ref_algorithm, ref_config).eval(), ref_card, reference_name, False)
    network, card, weights = load_network(name)
    entry = Loaded(network, card, weights.stem, True)
    reference = load_reference(card, weights)
    if reference is None:
        return entry, None
    ref_net, ref_card, ref_weights = reference
    return entry, Loaded(ref_net, ref_card, ref_weights.stem, True)


def seconds_per_tile(
    entry: Loaded, reference: Loaded | None, runtime: str, tile: int, repeats: int, device: str, scratch: Path
) -> float:
    """Mean seconds of one ``restore`` call on one tile, after a warm-up call."""
    from backend.device import choose_device
    from backend.runtime import onnx_network
    from models.restorers import make_restorer

    torch_device = choose_device(device) if runtime == "torch" else torch.device("cpu")

    def place(item: Loaded) -> Any:
        if runtime == "onnxruntime":
            path = scratch / f"{item.key}-{tile}.onnx"
            return onnx_network(item.network, item.card, path, tile, device, torch.get_num_threads())
        return item.network.to(torch_device)

    card = entry.card
    restore = make_restorer(
        place(entry), card, card.default_nfe, 0, place(reference) if reference is not None else None
    )
    generator = torch.Generator().manual_seed(0)
    optical = (torch.rand(1, len(card.optical_bands), tile, tile, generator=generator) * 0.4).to(torch_device)
    sar = torch.rand(1, len(card.sar_bands), tile, tile, generator=generator).to(torch_device)
    sar_in = sar if card.sar_bands else None
    restore(optical, sar_in, [(0, 0)])  # warm-up: allocator, ONNX Runtime's first-run optimisations
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        restore(optical, sar_in, [(0, 0)])
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def per_tile_table(args: argparse.Namespace) -> str:
    """Time every entry on every runtime and return the Markdown table."""
    from backend.device import configure_threads
    from backend.runtime import ort_device_label

    threads = configure_threads(args.threads)
    lines = [
        f"Seconds per {args.tile}² tile (batch 1, mean of {args.repeats} after a warm-up), {threads} CPU thread(s), "
        f"device {args.device}",
        "",
        "| model | method | NFE | weights | " + " | ".join(f"{runtime} s/tile" for runtime in args.runtimes) + " |",
        "|---|---|---:|---|" + "---:|" * len(args.runtimes),
    ]
    with tempfile.TemporaryDirectory(prefix="cr-bench-onnx-") as scratch:
        for name in args.per_tile:
            entry, reference = load_entry(name)
            timings = [
                seconds_per_tile(entry, reference, runtime, args.tile, args.repeats, args.device, Path(scratch))
                for runtime in args.runtimes
            ]
            cells = [f"{seconds:.3f}" for seconds in timings]
            weights = "trained" if entry.trained else "untrained (timing only)"
            lines.append(
                f"| {name} | {entry.card.algorithm} | {entry.card.default_nfe} | {weights} | {' | '.join(cells)} |"
            )
    if "onnxruntime" in args.runtimes:
        lines.append(f"\nONNX Runtime ran on {ort_device_label(args.device).split(':')[1]}.")
    return "\n".join(lines)
