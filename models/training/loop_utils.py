"""What every training run here shares: PSNR, EMA, exact checkpoints, the resumable loop and the JSON-lines log.

A checkpoint is our own ``torch.save`` dict read back with ``weights_only=True`` (no pickled code), with the keys
``step``, ``network``, ``ema``, ``optimizer``, ``scheduler``, ``rng`` (Python's ``random`` state as JSON) and
``torch_rng``; runs written by :func:`run_loop` add ``seconds`` (training time so far) and ``metrics`` (the last
validation, JSON), which older DB-CR checkpoints lack.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from models.card import ModelCard, save_weights

Log = Callable[[str], None]
# The file in a run's folder that holds its best validated EMA (``keep_if_best``), the one a run ships.
BEST_FILE = "best.pt"
# The keys a validation line of a run log carries besides its metrics; "loss" is the training loss, not a metric.
NOT_METRICS = ("loss",)


def psnr(a: Tensor, b: Tensor) -> float:
    """20 log10(1 / RMSE) over all bands and pixels (reflectance in [0, 1])."""
    rmse = torch.sqrt(torch.mean((a.clamp(0, 1) - b.clamp(0, 1)) ** 2)).item()
    return 20 * math.log10(1.0 / max(rmse, 1e-12))


def mean_psnr(a: Tensor, b: Tensor) -> float:
    """PSNR of each (C, H, W) image of a batch, averaged over images (as the DE and RICE papers report it)."""
    return sum(psnr(x, y) for x, y in zip(a, b, strict=True)) / len(a)


@torch.no_grad()
def update_ema(ema: nn.Module, network: nn.Module, decay: float) -> None:
    """Move every averaged weight a step ``1 - decay`` towards the current one."""
    for averaged, current in zip(ema.parameters(), network.parameters()):
        averaged.lerp_(current, 1 - decay)


def checkpoint(
    path: Path,
    step: int,
    network: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rng: random.Random,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save everything needed to resume exactly, atomically (written under a temporary name, then renamed)."""
    state = {
        "step": step, "network": network.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rng": json.dumps(rng.getstate()),
        "torch_rng": torch.get_rng_state(), **(extra or {}),
    }  # fmt: skip
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def resume(
    path: Path,
    network: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rng: random.Random,
) -> int:
    """Restore a checkpoint if one exists; return the step to continue from (0 without one)."""
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=True)
    network.load_state_dict(state["network"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    version, internal, gauss = json.loads(state["rng"])
    rng.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])


@dataclass(frozen=True)
class Exported:
    """What a checkpoint gives a weights file: the averaged weights, the step, the last metrics and the time."""

    ema: dict[str, Tensor]
    step: int
    metrics: dict[str, float]
    seconds: float


def read_export(path: Path, log_path: Path) -> Exported:
    """The EMA weights of a run's checkpoint, with its last validation (from the checkpoint, else the run log)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: nothing to export; train first (without --export-only)")
    state = torch.load(path, weights_only=True)
    if "metrics" in state:
        metrics, seconds = json.loads(state["metrics"]), float(state.get("seconds", 0.0))
    else:
        metrics = last_validation(log_path) if log_path.exists() else {}
        seconds = float(metrics.pop("seconds", 0.0))
    return Exported(state["ema"], int(state["step"]), metrics, seconds)


def last_validation(log_path: Path) -> dict[str, float]:
    """The metrics of the last evaluation line of a run log (with its ``step`` and ``seconds``)."""
    metrics: dict[str, float] = {}
    for line in log_path.read_text().splitlines():
        entry = json.loads(line)
        if "psnr_output" in entry:
            metrics = {key: value for key, value in entry.items() if key not in NOT_METRICS}
    return metrics


def jsonl_log(path: Path) -> Log:
    """A log that prints each line and appends it to ``path`` (one JSON object per line; folders made on use)."""

    def log(line: str) -> None:
        print(line, flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(line + "\n")

    return log


@dataclass
class TrainState:
    """The mutable parts of a run: the trained network, its average, the optimiser and the data's randomness."""

    network: nn.Module
    ema: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    rng: random.Random


def new_state(
    network: nn.Module, lr: float, steps: int, seed: int, initial: dict[str, Tensor] | None = None
) -> TrainState:
    """Adam with a one-cycle learning rate (5 % warm-up), an EMA copy and a seeded ``random.Random``.

    ``initial`` (a state dict) starts the network from an earlier model's weights rather than from scratch.
    """
    if initial is not None:
        network.load_state_dict(initial)
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=max(steps, 1), pct_start=0.05)
    ema = copy.deepcopy(network).requires_grad_(False)
    return TrainState(network, ema, optimizer, scheduler, random.Random(seed))


def run_loop(
    state: TrainState,
    steps: int,
    eval_every: int,
    ema_decay: float,
    step_fn: Callable[[], float],
    evaluate: Callable[[nn.Module], dict[str, float]],
    path: Path,
    log: Log,
    best_path: Path | None = None,
) -> tuple[dict[str, float], float]:
    """Train from ``path``'s checkpoint (if any) to ``steps``, evaluating the EMA and checkpointing together.

    Resume happens here, after the caller built its fixed validation set, so the restored random state is the one
    the next step uses and a resumed run draws exactly the batches an unbroken one would.

    Args:
        state: the run's network, EMA, optimiser, schedule and ``random.Random``.
        steps: the total number of optimiser steps of the run.
        eval_every: evaluate, log and checkpoint every this many steps (and after the last).
        ema_decay: the EMA's decay per step.
        step_fn: one optimiser step on a fresh batch; returns the loss.
        evaluate: metrics of the EMA network on the held-out set (``psnr_output`` at least).
        path: the checkpoint file.
        log: receives one JSON line per evaluation.
        best_path: where to keep the EMA with the highest ``score`` (else ``psnr_output``) so far, the start
            (step 0, evaluated and logged first) included, so that a run never ships worse than it began.

    Returns:
        The last validation metrics and the training seconds, both carried over from the checkpoint when the run
        had already finished.
    """
    start = resume(path, state.network, state.ema, state.optimizer, state.scheduler, state.rng)
    metrics: dict[str, float] = {}
    before = 0.0
    if start:
        saved = torch.load(path, weights_only=True)
        metrics, before = json.loads(saved.get("metrics", "{}")), float(saved.get("seconds", 0.0))
    started = time.time()
    if best_path is not None and not start:
        first = evaluate(state.ema)
        log(json.dumps({"step": 0, "seconds": 0, **first}))
        keep_if_best(best_path, 0, state.ema, first)
    for step in range(start, steps):
        loss = step_fn()
        state.scheduler.step()
        update_ema(state.ema, state.network, ema_decay)
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            metrics = evaluate(state.ema)
            seconds = before + time.time() - started
            log(json.dumps({"step": step + 1, "loss": round(loss, 5), "seconds": round(seconds), **metrics}))
            extra = {"seconds": seconds, "metrics": json.dumps(metrics)}
            checkpoint(path, step + 1, state.network, state.ema, state.optimizer, state.scheduler, state.rng, extra)
            if best_path is not None:
                keep_if_best(best_path, step + 1, state.ema, metrics)
    return metrics, before + time.time() - started


def score_of(metrics: dict[str, float]) -> float:
    """What a best checkpoint is chosen by: ``score`` where the evaluation gives one, else ``psnr_output``."""
    return float(metrics["score"] if "score" in metrics else metrics["psnr_output"])


def read_best(path: Path) -> tuple[int, dict[str, Tensor], dict[str, float]]:
    """A run's best EMA as :func:`keep_if_best` saved it: its step, weights and metrics."""
    best = torch.load(path, weights_only=True)
    return int(best["step"]), best["ema"], json.loads(best["metrics"])


def keep_if_best(path: Path, step: int, ema: nn.Module, metrics: dict[str, float]) -> None:
    """Save ``ema`` to ``path`` (atomically) when its score beats the one saved there, or nothing is saved yet."""
    if path.exists() and score_of(read_best(path)[2]) >= score_of(metrics):
        return
    torch.save({"step": step, "ema": ema.state_dict(), "metrics": json.dumps(metrics)}, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def load_best(path: Path, ema: nn.Module) -> tuple[int, dict[str, float]]:
    """Load the best EMA of a run into ``ema``; its step and metrics."""
    step, weights, metrics = read_best(path)
    ema.load_state_dict(weights)
    return step, metrics


def clone_state(network: nn.Module) -> dict[str, Tensor]:
    """A state dict safetensors accepts: every tensor its own contiguous copy (some nets share one PReLU)."""
    return {key: value.detach().clone().contiguous() for key, value in network.state_dict().items()}


def save_model(path: Path, network: nn.Module, card: ModelCard) -> None:
    """Write a trained network and its card to a weights file (folder created; shared tensors cloned)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(path, clone_state(network), card)
