"""Score one method on the evaluation folders, without and with scene adaptation, and print one Markdown table.

    .venv/bin/python scripts/eval_matrix.py dbcr --sets s2-held-out glf-cr --adapt 60
    .venv/bin/python scripts/eval_matrix.py de --sets rice2-held-out --adapt 30 --runtime onnxruntime

The folders come from ``python -m backend eval-sets`` (default ``runs/eval-sets``). Each variant is one
``python -m backend eval`` run (its report in ``runs/eval/<method>/<set>/<variant>/``); the table gives the mean
PSNR / SSIM / MAE / SAM of the cloudy input, the naive fill and every variant, and each run's wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

# "default" is what a user gets (clear pixels kept); "no-keep-clear" lets the model rewrite every pixel.
VARIANTS = {"default": [], "no-keep-clear": ["--no-keep-clear"]}


def variants(adapt: int) -> dict[str, list[str]]:
    """The eval flags of each variant: as shipped, keeping clear pixels, and both again after adapting."""
    if not adapt:
        return dict(VARIANTS)
    adapted = {f"adapt{adapt}{'' if not flags else '+' + name}": ["--adapt", str(adapt), *flags]
               for name, flags in VARIANTS.items()}  # fmt: skip
    return {**VARIANTS, **adapted}


def score(method: str, folder: Path, out: Path, flags: list[str], model: str | None) -> float:
    """Run one evaluation; returns its wall seconds."""
    command = [sys.executable, "-m", "backend", "eval", method, "--data", str(folder), "--out", str(out), *flags]
    command += ["--model", model] if model else []
    started = time.time()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.time() - started


def row(label: str, scores: dict[str, float], seconds: str = "") -> str:
    """One Markdown table row of mean scores."""
    return (f"| {label} | {scores['psnr']:.2f} | {scores['ssim']:.4f} | {scores['mae']:.4f} | {scores['sam']:.2f} "
            f"| {seconds} |")  # fmt: skip


def main() -> int:
    """Score every variant on every set and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=("dbcr", "diffcr", "de"))
    parser.add_argument("--sets", nargs="+", default=["s2-held-out", "glf-cr"])
    parser.add_argument("--root", type=Path, default=Path("runs") / "eval-sets")
    parser.add_argument("--adapt", type=int, default=60, help="adaptation steps (0: no adapted variants)")
    parser.add_argument("--model", help="model name or file (default: the method's shipped model)")
    parser.add_argument("--runtime", default="torch", help="torch or onnxruntime")
    parser.add_argument("--only", nargs="+", help="run only these variants (e.g. default adapt30)")
    args = parser.parse_args()
    for name in args.sets:
        lines = [
            f"### {args.method} on {name}",
            "",
            "| | PSNR dB | SSIM | MAE | SAM ° | wall s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        means: dict[str, float] = {}
        chosen = {name: flags for name, flags in variants(args.adapt).items() if not args.only or name in args.only}
        for variant, flags in chosen.items():
            out = Path("runs") / "eval" / args.method / name / variant
            seconds = score(args.method, args.root / name, out, [*flags, "--runtime", args.runtime], args.model)
            report = json.loads((out / "report.json").read_text())
            if not means:
                means = report["mean"]
                lines += [row(column, means[column]) for column in ("cloudy input", "naive fill")]
            lines.append(row(f"{args.method} {variant}", report["mean"][args.method], f"{seconds:.0f}"))
        print("\n".join(lines) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
