"""``python -m backend train dbcr ...``: train a model's config on real chips with simulated clouds."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# Places never seen in training: validation is held out by place, not by random pixels.
HELD_OUT_PLACES = ("87_48", "ROIs1970_21", "Pasture_300")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser("train", help="train a model on real clear chips with simulated clouds")
    parser.add_argument("algorithm", choices=["dbcr"])
    parser.add_argument("--config", default="lite", help="network config: lite or paper (default lite)")
    parser.add_argument("--name", default=None, help="model name (default: <algorithm>-<config>)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="the shared data folder")
    parser.add_argument(
        "--out", type=Path, default=None, help="weights file (default models/weights/<name>.safetensors)"
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="checkpoints and log (default runs/<name>)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument(
        "--export-only", action="store_true", help="write the weights file from the run's last checkpoint and stop"
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Train, log one JSON line per evaluation to stdout and the run log, and write the weights file."""
    import torch

    from models import dbcr
    from models.training.chips import load_chips, split_by_place
    from models.training.clouds import real_cloud_spectra
    from models.training.train_dbcr import (
        TrainSettings,
        dbcr_card,
        last_validation,
        load_checkpoint_ema,
        save_model,
        train_dbcr,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    configs = {"lite": dbcr.LITE, "paper": dbcr.PAPER}
    if args.config not in configs:
        print(f"Unknown config {args.config!r}; choose lite or paper", file=sys.stderr)
        return 2
    if not args.data_root.is_dir():
        print(f"Data folder {args.data_root} does not exist; pass --data-root", file=sys.stderr)
        return 2
    name = args.name or f"{args.algorithm}-{args.config}"
    out = args.out or Path("models") / "weights" / f"{name}.safetensors"
    run_dir = args.run_dir or Path("runs") / name
    chips = load_chips(args.data_root)
    train_chips, val_chips = split_by_place(chips, HELD_OUT_PLACES)
    spectra = torch.from_numpy(real_cloud_spectra(args.data_root))
    settings = TrainSettings(
        steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, seed=args.seed, eval_every=args.eval_every
    )
    log_file = run_dir / "log.jsonl"
    run_dir.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(line, flush=True)
        with open(log_file, "a") as handle:
            handle.write(line + "\n")

    sources = dict(Counter(chip.source for chip in train_chips))
    if args.export_only:
        network, step = load_checkpoint_ema(run_dir / "checkpoint.pt", configs[args.config])
        metrics = last_validation(log_file)
        seconds = float(metrics.pop("seconds", 0.0))
        settings = dataclasses.replace(settings, steps=step)
    else:
        log(f'{{"train_chips": {len(train_chips)}, "validation_chips": {len(val_chips)}}}')
        started = time.time()
        network, metrics = train_dbcr(configs[args.config], settings, train_chips, val_chips, spectra, run_dir, log)
        seconds = time.time() - started
    card = dbcr_card(name, configs[args.config], settings, sources, metrics, seconds)
    save_model(out, network, card)
    log(f'{{"weights": "{out}"}}')
    return 0
