"""``python -m backend train {dbcr,diffcr,de,de-reference,rgb-cloud} ...``: train a method's config on the shared data.

DB-CR and DiffCR learn from real clear Sentinel-2 chips with simulated clouds (validation on held-out places);
DE and its reference network learn from RICE2 pairs (validation on every 10th pair). Train ``de-reference`` before
``de``: a DE model names the reference network it was trained with, and the restorer loads it by that name.
``rgb-cloud`` is the cloud and haze detector of RGB imagery (keep-clear's mask where s2cloudless cannot run), also
learnt from the RICE2 pairs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# Places never seen in training: validation is held out by place, not by random pixels.
HELD_OUT_PLACES = ("87_48", "ROIs1970_21", "Pasture_300")
ALGORITHMS = ("dbcr", "diffcr", "de", "de-reference", "rgb-cloud")
# models.card.BRIDGE_STARTS, spelled here so that parsing the command line imports no torch (a test checks both).
BRIDGE_STARTS = ("cloudy", "local_fill")
# Flags whose default is the method's own recipe (its settings dataclass), so each method keeps its defaults.
RECIPE_FLAGS = (
    "steps", "batch", "crop", "lr", "seed", "eval_every", "real_share", "balanced_loss", "sar_dropout", "bridge_start",
)  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser("train", help="train a model: DB-CR, DiffCR (S2 chips), DE (RICE2)")
    parser.add_argument("algorithm", choices=ALGORITHMS)
    parser.add_argument("--config", default="lite", help="network config: lite or paper (default lite)")
    parser.add_argument("--name", default=None, help="model name (default: <algorithm>-<config>)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="the shared data folder")
    parser.add_argument(
        "--out", type=Path, default=None, help="weights file (default models/weights/<name>.safetensors)"
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="checkpoints and log (default runs/<name>)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the method's recipe)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--crop", type=int, default=None, help="crop size in pixels (DE: the largest crop)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument(
        "--real-share", type=float, default=None, help="dbcr only: share of each batch from real cloudy/clear pairs"
    )
    parser.add_argument(
        "--balanced-loss", action="store_true", default=None,
        help="dbcr only: the MAE as the mean under the cloud plus the mean on clear ground",
    )  # fmt: skip
    parser.add_argument("--sar-dropout", type=float, default=None, help="dbcr only: share of crops without radar")
    parser.add_argument(
        "--bridge-start", choices=BRIDGE_STARTS, default=None,
        help="dbcr: start the bridge at the cloudy image (default) or at it with its clouds filled from the "
        "clear ground around them (local_fill), which trains and validates on the clouds alone; de: what it restores "
        "at inference and in validation (default local_fill)",
    )  # fmt: skip
    parser.add_argument(
        "--tile-normalise", action="store_true",
        help="dbcr only: the network works on each tile standardised by its own band means and spreads",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument(
        "--reference", default=None, help="de only: the trained reference network, name or file "
        "(default de-reference-<config>)",
    )  # fmt: skip
    parser.add_argument(
        "--init-from", dest="init_from", default=None,
        help="start from this model's weights (name or .safetensors; same method and config) instead of a fresh "
        "network: a second stage, or fine-tuning on your own data",
    )  # fmt: skip
    parser.add_argument(
        "--export-only", action="store_true", help="write the weights file from the run's last checkpoint and stop"
    )
    parser.set_defaults(handler=main)


def recipe(defaults: Any, args: argparse.Namespace, **more: Any) -> Any:
    """A method's settings dataclass with the flags the user gave (the others keep the method's defaults)."""
    given = {
        flag: getattr(args, flag)
        for flag in RECIPE_FLAGS
        if getattr(args, flag, None) is not None and hasattr(defaults, flag)  # --real-share is DB-CR's alone
    }
    return dataclasses.replace(defaults, **given, **more)


def main(args: argparse.Namespace) -> int:
    """Train, log one JSON line per evaluation to stdout and the run log, and write the weights file."""
    import torch

    from models.training.loop_utils import jsonl_log

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.config not in ("lite", "paper"):
        print(f"Unknown config {args.config!r}; choose lite or paper", file=sys.stderr)
        return 2
    if not args.data_root.is_dir():
        print(f"Data folder {args.data_root} does not exist; pass --data-root", file=sys.stderr)
        return 2
    name = args.name or f"{args.algorithm}-{args.config}"
    out = args.out or Path("models") / "weights" / f"{name}.safetensors"
    run_dir = args.run_dir or Path("runs") / name
    log = jsonl_log(run_dir / "log.jsonl")
    trainers = {"dbcr": _dbcr, "diffcr": _diffcr, "de": _de, "de-reference": _de_reference, "rgb-cloud": _rgb_cloud}
    try:
        code = trainers[args.algorithm](args, name, out, run_dir, log)
    except FileNotFoundError as error:
        print(str(error), file=sys.stderr)
        return 2
    if code == 0:
        log(f'{{"weights": "{out}"}}')
    return code


def _dbcr(args: argparse.Namespace, name: str, out: Path, run_dir: Path, log: Any) -> int:
    import torch

    from models.networks import dbcr
    from models.training.chips import load_chips, split_by_place
    from models.training.clouds import real_cloud_spectra
    from models.training.loop_utils import BEST_FILE
    from models.training.train_dbcr import TrainSettings, dbcr_card, load_checkpoint_ema, save_model, train_dbcr
    from models.training.train_dbcr import last_validation as read_last

    config = {"lite": dbcr.LITE, "paper": dbcr.PAPER}[args.config]
    settings = recipe(TrainSettings(), args)
    if settings.bridge_start == "local_fill":  # the condition branch also sees the cloudy image and its mask
        config = dataclasses.replace(config, cloudy_channels=config.optical_channels + 1)
    if getattr(args, "tile_normalise", False):
        config = dataclasses.replace(config, tile_normalise=True)
    train_chips, val_chips = split_by_place(load_chips(args.data_root), HELD_OUT_PLACES)
    sources = dict(Counter(chip.source for chip in train_chips))
    if args.export_only:
        # The best validation of the run where it kept one (best.pt), else the last checkpoint.
        best = run_dir / BEST_FILE
        network, step = load_checkpoint_ema(best if best.exists() else run_dir / "checkpoint.pt", config)
        metrics = json.loads(torch.load(best, weights_only=True)["metrics"]) if best.exists() else {}
        metrics = metrics or read_last(run_dir / "log.jsonl")
        seconds = float(metrics.pop("seconds", 0.0))
        settings = dataclasses.replace(settings, steps=step)
    else:
        spectra = torch.from_numpy(real_cloud_spectra(args.data_root))
        real_train, real_val = _real_pairs(args.data_root)
        log(
            f'{{"train_chips": {len(train_chips)}, "validation_chips": {len(val_chips)}, '
            f'"train_real_pairs": {len(real_train)}, "validation_real_pairs": {len(real_val)}}}'
        )
        sources["SEN12MS-CR real pairs"] = len(real_train)
        started = time.time()
        initial = _initial_weights(args, config)
        network, metrics = train_dbcr(
            config, settings, train_chips, val_chips, spectra, run_dir, log, initial, real_train, real_val
        )
        seconds = time.time() - started
    save_model(out, network, _noted(dbcr_card(name, config, settings, sources, metrics, seconds), args))
    return 0


def _real_pairs(data_root: Path) -> tuple[list[Any], list[Any]]:
    """The real cloudy / clear pairs for training (cirrus-free targets only) and for validation (split by scene)."""
    from models.datasets.real_pairs import PAIRS_DIR, load_real_pairs

    if not (data_root / PAIRS_DIR / "manifest.csv").is_file():
        return [], []
    return load_real_pairs(data_root, clear_targets_only=True), load_real_pairs(data_root, held_out=True)


def _initial_weights(args: argparse.Namespace, config: Any) -> dict[str, Any] | None:
    """The state dict of ``--init-from``: an earlier model of the same method and config, to go on from."""
    from models.registry import load_model

    if not args.init_from:
        return None
    network, card = load_model(args.init_from)
    same_config = json.loads(json.dumps(dataclasses.asdict(config))) == json.loads(json.dumps(card.config))
    if card.algorithm != args.algorithm or not same_config:
        raise FileNotFoundError(f"{args.init_from} is not a {args.algorithm} model of the {args.config} config")
    return dict(network.state_dict())


def _noted(card: Any, args: argparse.Namespace) -> Any:
    """The card, saying which model training started from (``--init-from``)."""
    if not args.init_from:
        return card
    return card.replace(training={**card.training, "initialised_from": str(args.init_from)})


def _diffcr(args: argparse.Namespace, name: str, out: Path, run_dir: Path, log: Any) -> int:
    import torch

    from models.networks import diffcr
    from models.training.chips import load_chips, split_by_place
    from models.training.clouds import real_cloud_spectra
    from models.training.loop_utils import read_export, save_model
    from models.training.train_diffcr import DiffCRSettings, diffcr_card, train_diffcr

    # The paper's width and depth on the Sentinel-2 layout (its released config is 3 RGB bands x 3 dates).
    paper = dataclasses.replace(diffcr.DiffCRConfig.paper(), bands=13, dates=1, sar_bands=2)
    config = {"lite": diffcr.LITE, "paper": paper}[args.config]
    if config.prior:
        return _diffcr_temporal(args, name, out, run_dir, log, config)
    train_chips, val_chips = split_by_place(load_chips(args.data_root), HELD_OUT_PLACES)
    settings = recipe(DiffCRSettings(), args)
    sources = dict(Counter(chip.source for chip in train_chips))
    if args.export_only:
        saved = read_export(run_dir / "checkpoint.pt", run_dir / "log.jsonl")
        network = diffcr.DiffCRNet(config)
        network.load_state_dict(saved.ema)
        metrics, seconds, settings = saved.metrics, saved.seconds, dataclasses.replace(settings, steps=saved.step)
    else:
        spectra = torch.from_numpy(real_cloud_spectra(args.data_root))
        log(f'{{"train_chips": {len(train_chips)}, "validation_chips": {len(val_chips)}}}')
        network, metrics, seconds = train_diffcr(
            config, settings, train_chips, val_chips, spectra, run_dir, log, _initial_weights(args, config)
        )
    save_model(out, network, _noted(diffcr_card(name, config, settings, sources, metrics, seconds), args))
    return 0


def _diffcr_temporal(args: argparse.Namespace, name: str, out: Path, run_dir: Path, log: Any, config: Any) -> int:
    """A temporal-fill DiffCR: simulated dates of every training place, the real series as validation."""
    import torch

    from models.training.chips import load_chips, split_by_place
    from models.training.clouds import real_cloud_spectra
    from models.training.loop_utils import save_model
    from models.training.train_diffcr_temporal import (
        TEMPORAL_SETTINGS,
        series_validation,
        temporal_card,
        train_temporal,
    )

    if args.export_only or args.init_from:
        print("train diffcr with a temporal prior keeps its best checkpoint itself; it has no --export-only or "
              "--init-from", file=sys.stderr)  # fmt: skip
        return 2
    settings = recipe(TEMPORAL_SETTINGS, args)
    # Validation is the real series; the held-out places stay out of training all the same (s2-held-out is theirs).
    train_chips, _ = split_by_place(load_chips(args.data_root), HELD_OUT_PLACES)
    sources = dict(Counter(chip.source for chip in train_chips))
    validation = series_validation(args.data_root)
    spectra = torch.from_numpy(real_cloud_spectra(args.data_root))
    log(f'{{"train_chips": {len(train_chips)}, "validation_series_items": {len(validation["dates"])}}}')
    card = temporal_card("validation", config, settings)
    network, metrics, seconds, kept = train_temporal(
        config, settings, card, train_chips, validation, spectra, run_dir, log
    )
    save_model(out, network, temporal_card(name, config, settings, sources, metrics, seconds, kept))
    return 0


def _rice(args: argparse.Namespace, log: Any) -> tuple[Any, Any]:
    from models.datasets.rasters import DatasetError
    from models.training.rice_pairs import load_rice_sets

    try:
        train, validation = load_rice_sets(args.data_root)
    except DatasetError as error:
        raise FileNotFoundError(str(error)) from error
    held = ", ".join(f"{len(pairs)} of {name}" for name, pairs in validation.items())
    log(json.dumps({"train_pairs": len(train), "validation_pairs": held}))
    return train, validation


def _exported(run_dir: Path) -> tuple[dict[str, Any], dict[str, float], float, int]:
    """A run's weights to write: the best validated EMA where the run kept one, else its last checkpoint's."""
    from models.training.loop_utils import BEST_FILE, read_best, read_export

    saved = read_export(run_dir / "checkpoint.pt", run_dir / "log.jsonl")
    if not (run_dir / BEST_FILE).exists():
        return saved.ema, saved.metrics, saved.seconds, saved.step
    best_step, weights, metrics = read_best(run_dir / BEST_FILE)
    return weights, {**metrics, "step": best_step}, saved.seconds, saved.step


def _de_reference(args: argparse.Namespace, name: str, out: Path, run_dir: Path, log: Any) -> int:
    from models.networks import de_reference
    from models.training.loop_utils import save_model
    from models.training.train_de import ReferenceSettings, reference_card, train_reference

    config = {"lite": de_reference.LITE, "paper": de_reference.DEReferenceConfig.paper()}[args.config]
    settings = recipe(ReferenceSettings(), args)
    train, validation = _rice(args, log)
    if args.export_only:
        weights, metrics, seconds, steps = _exported(run_dir)
        network = de_reference.DEReferenceNet(config)
        network.load_state_dict(weights)
        settings = dataclasses.replace(settings, steps=steps)
    else:
        network, metrics, seconds = train_reference(
            config, settings, train, validation, run_dir, log, _initial_weights(args, config)
        )
    save_model(out, network, _noted(reference_card(name, config, settings, len(train), metrics, seconds), args))
    return 0


def _de(args: argparse.Namespace, name: str, out: Path, run_dir: Path, log: Any) -> int:
    from models.networks import de
    from models.registry import ModelNotFoundError, load_model
    from models.training.loop_utils import save_model
    from models.training.train_de import DESettings, de_card, train_de

    config = {"lite": de.LITE, "paper": de.DEConfig.paper()}[args.config]
    settings = recipe(DESettings(), args)
    reference_name = args.reference or f"de-reference-{args.config}"
    try:
        reference, card = load_model(reference_name)
    except ModelNotFoundError as error:
        print(f"{error}. Train it first: python -m backend train de-reference --config {args.config}", file=sys.stderr)
        return 2
    if card.algorithm != "de-reference":
        print(f"{reference_name} is a {card.algorithm} model, not a DE reference network", file=sys.stderr)
        return 2
    train, validation = _rice(args, log)
    if args.export_only:
        weights, metrics, seconds, steps = _exported(run_dir)
        network = de.DENet(config)
        network.load_state_dict(weights)
        settings = dataclasses.replace(settings, steps=steps)
    else:
        network, metrics, seconds = train_de(
            config, settings, reference, reference_name, train, validation, run_dir, log, _initial_weights(args, config)
        )
    card = de_card(name, config, settings, reference_name, len(train), metrics, seconds)
    save_model(out, network, _noted(card, args))
    return 0


def _rgb_cloud(args: argparse.Namespace, name: str, out: Path, run_dir: Path, log: Any) -> int:
    from torch import nn

    from models.networks import rgb_cloud
    from models.training.loop_utils import save_model
    from models.training.train_rgb_cloud import RgbCloudSettings, rgb_cloud_card, train_rgb_cloud

    if args.config != "lite":
        print("rgb-cloud has one config, lite", file=sys.stderr)
        return 2
    settings = recipe(RgbCloudSettings(), args)
    train, validation = _rice(args, log)
    network: nn.Module
    if args.export_only:
        weights, metrics, seconds, steps = _exported(run_dir)
        network = rgb_cloud.RgbCloudNet(rgb_cloud.LITE)
        network.load_state_dict(weights)
        settings = dataclasses.replace(settings, steps=steps)
    else:
        network, metrics, seconds = train_rgb_cloud(
            rgb_cloud.LITE, settings, train, validation, run_dir, log, _initial_weights(args, rgb_cloud.LITE)
        )
    card = rgb_cloud_card(name, rgb_cloud.LITE, settings, len(train), metrics, seconds)
    save_model(out, network, _noted(card, args))
    return 0
