"""``python -m backend bench``: how fast a real run is, end to end, beside the bare network on the same tiles.

With ``--per-tile`` it times each method's restorer per tile instead, torch against ONNX Runtime
(``backend.commands.bench_per_tile``).

For each size, a square S2 + S1 pair is mosaicked from the SEN12MS-CR demo sample (256 x 256, mirrored at every
seam so the mosaic stays continuous) with a proper transform, and ``python -m backend run`` is run on it as a
subprocess, exactly as the plugin runs it. Its wall time and peak RSS (``wait4`` of that child) are measured.
Then, in this process, the restorer alone runs on random tiles, as many as the run had, which is the floor the
tiling, I/O and blending overhead is measured against. Each size runs on each runtime (``--runtimes``, default
torch and onnxruntime). The result is a Markdown table on stdout. ``--sizes 1024,4096,10980`` adds a synthetic
full Sentinel-2 tile (10980² x 13 bands).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import Window

from backend.errors import BackendError
from backend.protocol import EXIT_OK, EXIT_USER_ERROR, decode_event
from models.cloudmask import PROBABILITY_STEP

# The plugin folder (the backend runs with it as working directory) and its bundled sample.
ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = ROOT / "sample"
SAMPLE_S2 = "ROIs1868_summer_s2_cloudy_19_p30.tif"
SAMPLE_S1 = "ROIs1868_summer_s1_19_p30.tif"


@dataclass(frozen=True)
class BenchRow:
    """One size on one runtime (seconds, MPix/s of raster pixels, MiB)."""

    size: int
    runtime: str
    tiles: int
    wall_s: float
    pipeline_s: float
    peak_rss_mib: float
    network_s: float
    restore_s: float
    mask_s: float

    @property
    def overhead(self) -> float:
        """What the pipeline (cloud mask, reading, tiling, blending, writing) adds to the run's own network time.

        The network time is the run's seconds in the restorer, measured in the run: keep-clear skips the network
        on batches without clouds, so a bare network timed on every tile would count work the run never did.
        """
        return self.pipeline_s / self.restore_s - 1.0 if self.restore_s else float("nan")

    @property
    def overhead_besides_mask(self) -> float:
        """The same without the cloud mask (s2cloudless, for keep-clear and the local fill): the pipeline's own."""
        return (self.pipeline_s - self.mask_s) / self.restore_s - 1.0 if self.restore_s else float("nan")

    def markdown(self) -> str:
        """The row in the table."""
        mpix = self.size * self.size / 1e6
        return (
            f"| {self.size}² | {self.runtime} | {self.tiles} | {self.wall_s:.1f} | {mpix / self.wall_s:.3f} | "
            f"{mpix / self.pipeline_s:.3f} | {self.peak_rss_mib:.0f} | {self.network_s:.1f} | "
            f"{mpix / self.network_s:.3f} | {self.restore_s:.2f} | {self.mask_s:.2f} | {100 * self.overhead:+.1f}% | "
            f"{100 * self.overhead_besides_mask:+.1f}% |"
        )


HEADER = (
    "| raster | runtime | tiles | end-to-end s | end-to-end MPix/s | pipeline MPix/s | peak RSS MiB | network-only s "
    "| network-only MPix/s | network in the run s | cloud mask s | pipeline overhead | overhead besides the mask |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def mirrored_mosaic(source: str, size: int, output: str) -> str:
    """Tile a small raster into a ``size`` x ``size`` GeoTIFF, mirroring every other copy; return its path."""
    with rasterio.open(source) as dataset:
        tile = dataset.read()
        profile = dataset.profile.copy()
    _, height, width = tile.shape
    profile.update(width=size, height=size, tiled=True, blockxsize=256, blockysize=256, compress="DEFLATE", zlevel=1)
    with rasterio.open(output, "w", **profile) as out:
        for top in range(0, size, height):
            for left in range(0, size, width):
                piece = tile[:, :: -1 if (top // height) % 2 else 1, :: -1 if (left // width) % 2 else 1]
                rows, cols = min(height, size - top), min(width, size - left)
                out.write(piece[:, :rows, :cols], window=Window(left, top, cols, rows))
    return output


def run_backend(args: list[str]) -> tuple[dict[str, Any], float, float]:
    """Run ``python -m backend run ...``; return its finished stats, wall seconds and peak RSS (MiB)."""
    with tempfile.TemporaryFile("w+") as errors:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "backend", "run", *args, "--events"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert process.stdout is not None
        events = [event for event in map(decode_event, process.stdout) if event is not None]
        # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN would mix in every earlier child).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        errors.seek(0)
        stderr = errors.read()
    last = events[-1] if events else None
    if process.returncode != EXIT_OK or last is None or last.kind != "finished":
        message = last.get("message") if last is not None else stderr.strip()[-500:]
        raise RuntimeError(f"backend run failed ({process.returncode}): {message}")
    return dict(last.get("stats")), wall, usage.ru_maxrss / 1024.0


def network_seconds(args: argparse.Namespace, stats: dict[str, Any], runtime: str = "torch") -> float:
    """Seconds the restorer alone takes for the run's tiles: random tiles in the run's batches, after a warm-up.

    The batches are the run's own (``backend.tiling.tile_batches``: each row of tiles cut into batches, so a row's
    last batch may be short). With ``args.network_tiles`` only the first batches up to that many tiles are timed
    and the seconds scaled to the run's tiles (a full Sentinel-2 tile has 3,249; each costs the network the same).
    ONNX export and session start happen before the warm-up and are not timed.
    """
    import torch

    from backend.device import configure_threads
    from backend.job import Job
    from backend.tiling import tile_batches
    from backend.worker import load_restorer, tensor_device

    job = Job(
        args.algorithm, "bench", "bench.tif", model=args.model, nfe=args.nfe, device=args.device, batch=args.batch,
        runtime=runtime, threads=args.threads,
    )  # fmt: skip
    torch_device = tensor_device(job)
    configure_threads(args.threads)  # the same threads as the run it is compared with
    restore, card = load_restorer(job, torch_device, scene_fill=False)
    size = card.tile_size
    height, width = stats["height"], stats["width"]
    sizes = [len(tiles) for tiles, _ in tile_batches(height, width, stats["tile_size"], stats["overlap"], args.batch)]
    timed = _first_batches(sizes, args.network_tiles)
    generator = torch.Generator().manual_seed(0)
    optical = torch.rand(args.batch, len(card.optical_bands), size, size, generator=generator).mul(0.4)
    sar = torch.rand(args.batch, len(card.sar_bands), size, size, generator=generator)
    optical, sar = optical.to(torch_device), sar.to(torch_device)
    # An empty cloud mask: the mask is the pipeline's work (keep-clear), not the network's.
    clear = torch.zeros(args.batch, 1, size, size, device=torch_device)

    def call(count: int) -> None:
        origins = [(0, index * size) for index in range(count)]
        restore(optical[:count], sar[:count] if card.sar_bands else None, origins, mask=clear[:count])

    call(args.batch)  # warm-up: allocator, cuDNN algorithm choice
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for count in timed:
        call(count)
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * sum(sizes) / sum(timed)


def _first_batches(sizes: list[int], most_tiles: int | None) -> list[int]:
    """The first of ``sizes`` (tiles per batch) holding at most ``most_tiles`` tiles (at least one batch)."""
    if not most_tiles:
        return sizes
    kept = list(itertools.accumulate(sizes))
    return sizes[: max(1, sum(1 for total in kept if total <= most_tiles))]


def bench(args: argparse.Namespace) -> str:
    """Run every size on every runtime and return the Markdown table."""
    rows: list[BenchRow] = []
    stats: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cr-bench-") as scratch:
        for size in args.sizes:
            optical = mirrored_mosaic(str(args.sample_dir / SAMPLE_S2), size, f"{scratch}/s2_{size}.tif")
            sar = mirrored_mosaic(str(args.sample_dir / SAMPLE_S1), size, f"{scratch}/s1_{size}.tif")
            for runtime in args.runtimes:
                output = f"{scratch}/out_{size}.tif"
                flags = ["--optical", optical, "--sar", sar, "--output", output, "--runtime", runtime]
                flags += ["--device", args.device, "--batch", str(args.batch)]
                for flag, value in (("--model", args.model), ("--nfe", args.nfe), ("--threads", args.threads)):
                    if value is not None:
                        flags += [flag, str(value)]
                if args.keep_clear is not None:
                    flags.append("--keep-clear" if args.keep_clear else "--no-keep-clear")
                stats, wall, rss = run_backend([args.algorithm, *flags])
                net = network_seconds(args, stats, runtime)
                mask = float(stats.get("cloud_mask_seconds", 0.0))
                restore = float(stats.get("restore_seconds", 0.0))
                rows.append(BenchRow(size, runtime, stats["tiles"], wall, stats["seconds"], rss, net, restore, mask))
                print(rows[-1].markdown(), file=sys.stderr, flush=True)  # a full tile takes a while
                os.remove(output)
            for path in (optical, sar):
                os.remove(path)
    title = (
        f"Model {stats.get('model')}, NFE {stats.get('nfe')}, device {args.device}, batch {args.batch}, "
        f"threads {stats.get('threads')}, keep-clear {_keep_clear_label(args.keep_clear)}; "
        f"GDAL_CACHEMAX {os.environ.get('GDAL_CACHEMAX', 'GDAL default')}"
    )
    notes = (
        "Pipeline: the run's own seconds (reading, tiling, network, blending, writing), without process start and "
        "model loading; network-only: the bare restorer on random tiles in the run's batches, every tile; network in "
        "the run: the run's seconds in the restorer (keep-clear skips batches without clouds); overhead: pipeline "
        "seconds over the network's in the run; "
        f"cloud mask: the run's seconds in s2cloudless (each {PROBABILITY_STEP} x {PROBABILITY_STEP} px block of the "
        "scene classified once)."
    )
    if args.network_tiles:
        notes += f" Network-only timed on {args.network_tiles} tiles and scaled to the run's."
    return "\n".join([title, "", HEADER, *(row.markdown() for row in rows), "", notes])


def _keep_clear_label(keep_clear: bool | None) -> str:
    return "the run's default" if keep_clear is None else ("on" if keep_clear else "off")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be whole numbers separated by commas, not {text!r}") from None
    if any(size < 16 for size in sizes):
        raise argparse.ArgumentTypeError("every size must be at least 16 pixels")
    return sizes


def register(subparsers: Any) -> None:
    """Add the ``bench`` command."""
    parser = subparsers.add_parser("bench", help="time end-to-end runs against the bare network")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1024, 4096],
        help="raster sides, e.g. 1024,4096 (10980 is a full Sentinel-2 tile: 25-35 minutes per runtime on 2 cores)",
    )
    parser.add_argument("--algorithm", default="dbcr", help="method (default dbcr)")
    parser.add_argument("--model", default=None, help="model name or .safetensors file (default: the shipped one)")
    parser.add_argument("--nfe", type=int, default=None, help="sampler steps (default: the model card's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch", type=int, default=4, help="tiles per network call")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument(
        "--keep-clear",
        dest="keep_clear",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run with or without keep-clear (default: the run's default; its cloud mask is not in network-only)",
    )
    parser.add_argument(
        "--network-tiles",
        type=int,
        default=None,
        help="time the bare network on at most this many tiles and scale to the run's (default: as many as the run)",
    )
    parser.add_argument("--sample-dir", type=Path, default=SAMPLE_DIR, help="folder with the SEN12MS-CR sample")
    per_tile = parser.add_argument_group("per-tile timing (python -m backend bench --per-tile)")
    per_tile.add_argument(
        "--per-tile",
        type=_names,
        nargs="?",
        const=_names(PER_TILE_DEFAULT),
        default=None,
        metavar="MODELS",
        help=f"time each model's restorer per tile instead: configs or models, comma-separated "
        f"(default {PER_TILE_DEFAULT}; configs run untrained)",
    )
    per_tile.add_argument("--tile", type=int, default=256, help="tile side in pixels (default 256)")
    parser.add_argument(
        "--runtimes", type=_names, default=["torch", "onnxruntime"], help="torch,onnxruntime (default both)"
    )
    per_tile.add_argument("--repeats", type=int, default=3, help="timed calls per model and runtime (default 3)")
    parser.set_defaults(handler=handle)


PER_TILE_DEFAULT = "dbcr-lite,diffcr-lite,de-lite"


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def handle(args: argparse.Namespace) -> int:
    """Print the table; a failed run is reported as a sentence."""
    if args.per_tile:
        return _handle_per_tile(args)
    from backend.job import RUNTIMES

    if any(name not in RUNTIMES for name in args.runtimes):
        print(f"Error: runtimes must be among {', '.join(RUNTIMES)}", file=sys.stderr)
        return EXIT_USER_ERROR
    if not (args.sample_dir / SAMPLE_S2).exists():
        print(f"Error: the SEN12MS-CR sample is not in {args.sample_dir}; give --sample-dir", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        print(bench(args))
    except (RuntimeError, BackendError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return EXIT_OK


def _handle_per_tile(args: argparse.Namespace) -> int:
    from backend.commands.bench_per_tile import per_tile_table
    from backend.job import RUNTIMES, TILE_MULTIPLE, TILE_RANGE

    unknown = [name for name in args.runtimes if name not in RUNTIMES]
    if unknown or args.repeats < 1 or args.tile % TILE_MULTIPLE or not TILE_RANGE[0] <= args.tile <= TILE_RANGE[1]:
        print(
            f"Error: runtimes must be among {', '.join(RUNTIMES)}, repeats at least 1, and the tile a multiple of "
            f"{TILE_MULTIPLE} between {TILE_RANGE[0]} and {TILE_RANGE[1]}",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    try:
        print(per_tile_table(args))
    except BackendError as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return EXIT_OK
