"""``make gpu-check``: does each method run on the GPU, on both runtimes, and give the CPU's pixels?

Prepared for a machine with CUDA (run it there as ``.venv/bin/python scripts/gpu_check.py``); on a machine without
one it says so and checks the CPU path only, so it can be proved anywhere. It:

1. reports what it finds: torch's CUDA devices and ONNX Runtime's execution providers;
2. runs one tile of each method with its shipped model (dbcr-lite, diffcr-lite, de-lite from models/weights/, at
   the card's tile size and NFE, batch 1) on torch CPU, ONNX Runtime CPU and, where there is CUDA, torch CUDA and
   ONNX Runtime's CUDAExecutionProvider;
3. compares every run's tile with torch CPU's (reflectance 0-1): the mean absolute difference must stay within
   :data:`MEAN_TOLERANCE` and the largest within :data:`MAX_TOLERANCE` (GPUs use TF32 convolutions by default and
   a diffusion sampler compounds the differences over its steps, so the limits are per method);
4. times each run (mean seconds per tile over ``--repeats`` calls after one warm-up call, which holds ONNX export
   and session start) and its peak GPU memory: ``torch.cuda.max_memory_allocated`` for torch, the rise of the
   device's used memory (``torch.cuda.mem_get_info``) for ONNX Runtime, whose allocator torch does not see.

The result is a Markdown table on stdout and the same rows as JSON (``--json``, default gpu-check.json). Exit
status: 0 when every run agreed within tolerance, 1 when one failed or disagreed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402  (after the path: backend and models are top-level packages of the plugin folder)

MODELS = ("dbcr-lite", "diffcr-lite", "de-lite")
# Reflectance (0-1); 1e-3 is 10 DN of Sentinel-2's reflectance x 10000, or a quarter of an 8-bit RGB step.
MEAN_TOLERANCE = {"dbcr": 1e-3, "diffcr": 5e-3, "de": 5e-3}
MAX_TOLERANCE = {"dbcr": 2e-2, "diffcr": 1e-1, "de": 1e-1}
MIB = 1024 * 1024


@dataclass
class CheckRow:
    """One model on one runtime and device."""

    model: str
    method: str
    nfe: int
    tile: int
    runtime: str
    device: str
    seconds_per_tile: float | None = None
    peak_gpu_mib: float | None = None
    mean_abs_diff: float | None = None
    max_abs_diff: float | None = None
    agrees: bool | None = None
    error: str | None = None

    def markdown(self) -> str:
        """The row in the table."""

        def cell(value: float | None, spec: str) -> str:
            return "–" if value is None else format(value, spec)

        verdict = "error: " + (self.error or "") if self.error else ("yes" if self.agrees else "**no**")
        return (
            f"| {self.model} | {self.method} | {self.nfe} | {self.tile} | {self.runtime} | {self.device} | "
            f"{cell(self.seconds_per_tile, '.3f')} | {cell(self.peak_gpu_mib, '.0f')} | "
            f"{cell(self.mean_abs_diff, '.2e')} | {cell(self.max_abs_diff, '.2e')} | {verdict} |"
        )


HEADER = (
    "| model | method | NFE | tile | runtime | device | s/tile | peak GPU MiB | mean abs diff | max abs diff "
    "| agrees with torch CPU |\n|---|---|---:|---:|---|---|---:|---:|---:|---:|---|"
)


def devices() -> dict[str, Any]:
    """What this machine offers: torch's CUDA devices, ONNX Runtime's providers."""
    import onnxruntime as ort

    cuda = torch.cuda.is_available()
    found: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda_build": torch.version.cuda,
        "torch_cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
        if cuda
        else [],
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
    }
    return found


def runs(found: dict[str, Any]) -> list[tuple[str, str]]:
    """(runtime, device) pairs to check: the CPU always, CUDA where torch or ONNX Runtime has it."""
    pairs = [("torch", "cpu"), ("onnxruntime", "cpu")]
    if found["torch_cuda_available"]:
        pairs.append(("torch", "cuda"))
    if "CUDAExecutionProvider" in found["onnxruntime_providers"]:
        pairs.append(("onnxruntime", "cuda"))
    return pairs


def inputs(card: Any, tile: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One fixed tile (batch 1): optical reflectance in [0, 0.4], SAR in [0, 1] when the model takes SAR."""
    generator = torch.Generator().manual_seed(0)
    optical = torch.rand(1, len(card.optical_bands), tile, tile, generator=generator) * 0.4
    sar = torch.rand(1, len(card.sar_bands), tile, tile, generator=generator) if card.sar_bands else None
    return optical, sar


def run_one(name: str, runtime: str, device: str, repeats: int, scratch: Path) -> tuple[CheckRow, torch.Tensor | None]:
    """One model on one runtime and device: its row (time, memory) and its restored tile (on the CPU)."""
    from backend.commands.bench_per_tile import load_entry
    from backend.runtime import onnx_network
    from models.restorers import make_restorer

    entry, reference = load_entry(name)
    card = entry.card
    tile = card.tile_size
    row = CheckRow(name, card.algorithm, card.default_nfe, tile, runtime, device)
    cuda = device == "cuda"
    # The restorer takes its tensors where the network is: the GPU for torch CUDA, the CPU for ONNX Runtime.
    tensors_on = torch.device("cuda" if cuda and runtime == "torch" else "cpu")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        free_before, total = torch.cuda.mem_get_info()

    def place(item: Any) -> Any:
        if runtime == "onnxruntime":
            path = scratch / f"{item.key}-{tile}.onnx"
            return onnx_network(item.network, item.card, path, tile, device, torch.get_num_threads())
        return item.network.to(tensors_on).eval()

    try:
        restore = make_restorer(place(entry), card, card.default_nfe, 0, place(reference) if reference else None)
        optical, sar = inputs(card, tile)
        optical, sar = optical.to(tensors_on), sar.to(tensors_on) if sar is not None else None
        with torch.inference_mode():
            restored = restore(optical, sar, [(0, 0)])  # warm-up: export, session start, cuDNN's choice
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(repeats):
                restored = restore(optical, sar, [(0, 0)])
            if cuda:
                torch.cuda.synchronize()
            row.seconds_per_tile = (time.perf_counter() - start) / repeats
        if cuda:
            if runtime == "torch":
                row.peak_gpu_mib = torch.cuda.max_memory_allocated() / MIB
            else:
                free_after, _ = torch.cuda.mem_get_info() if torch.cuda.is_available() else (free_before, total)
                row.peak_gpu_mib = max(0, free_before - free_after) / MIB
        return row, restored.detach().float().cpu()
    except Exception as error:  # a check reports every failure and goes on with the next run
        row.error = f"{type(error).__name__}: {error}"[:300]
        return row, None


def check(repeats: int) -> tuple[dict[str, Any], list[CheckRow]]:
    """Every model on every available runtime and device, compared with torch CPU."""
    found = devices()
    rows: list[CheckRow] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-onnx-") as folder:
        for name in MODELS:
            baseline: torch.Tensor | None = None
            for runtime, device in runs(found):
                row, restored = run_one(name, runtime, device, repeats, Path(folder))
                if restored is not None and baseline is None and (runtime, device) == ("torch", "cpu"):
                    baseline = restored
                if restored is not None and baseline is not None:
                    diff = (restored - baseline).abs()
                    row.mean_abs_diff, row.max_abs_diff = float(diff.mean()), float(diff.max())
                    row.agrees = (
                        row.mean_abs_diff <= MEAN_TOLERANCE[row.method]
                        and row.max_abs_diff <= MAX_TOLERANCE[row.method]
                    )
                elif row.error is None:
                    row.error = "no torch CPU tile to compare with"
                rows.append(row)
                print(row.markdown(), file=sys.stderr, flush=True)  # progress: a GPU run may take a while
    return found, rows


def main(argv: list[str] | None = None) -> int:
    """Check, print the table, write the JSON; 0 when every run agreed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per run after the warm-up (default 3)")
    parser.add_argument("--json", type=Path, default=Path("gpu-check.json"), help="where the rows go as JSON")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, all cores)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    found, rows = check(max(1, args.repeats))
    cuda = found["torch_cuda_available"] or "CUDAExecutionProvider" in found["onnxruntime_providers"]
    lines = [
        f"torch {found['torch']} (CUDA build {found['torch_cuda_build']}), CUDA devices: "
        f"{', '.join(found['cuda_devices']) or 'none'}; onnxruntime {found['onnxruntime']}, providers: "
        f"{', '.join(found['onnxruntime_providers'])}",
        "",
        HEADER,
        *(row.markdown() for row in rows),
        "",
        "Tolerance vs torch CPU (reflectance 0-1): mean abs diff "
        + ", ".join(f"{method} {value:g}" for method, value in MEAN_TOLERANCE.items())
        + "; max abs diff "
        + ", ".join(f"{method} {value:g}" for method, value in MAX_TOLERANCE.items())
        + ". Seconds: mean per tile after one warm-up call.",
    ]
    if found["torch_cuda_available"] and "CUDAExecutionProvider" not in found["onnxruntime_providers"]:
        lines += ["", "ONNX Runtime has no CUDAExecutionProvider (a CPU-only wheel; onnxruntime-gpu has it): no row."]
    if not cuda:
        lines += [
            "",
            "No CUDA here: torch.cuda.is_available() is False and ONNX Runtime has no CUDAExecutionProvider; "
            "only the CPU path was checked. Run `make gpu-check` on a machine with an NVIDIA GPU for the GPU rows.",
        ]
    print("\n".join(lines))
    args.json.write_text(json.dumps({"devices": found, "rows": [asdict(row) for row in rows]}, indent=2) + "\n")
    print(f"\nWrote {args.json}")
    return 0 if all(row.agrees for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
