"""Plot a training run's validation (its ``log.jsonl``) against step, one panel per validation set.

    .venv/bin/python scripts/training_curve.py runs/NAME/log.jsonl docs/training/NAME/curve.png

Each panel shows the output and, as flat lines, the baselines the trainer logged beside it (the cloudy input, and
for local-fill runs the fill the bridge starts from), under the cloud and on clear pixels; for DE and its reference
network, one panel per held-out RICE2 set; for the RGB cloud detector, its IoU with the held-out labels and the
share of the clear images' pixels it flags.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Per panel: its title and its curves (log key, label, line style, colour); a panel shows where its log has a curve.
Curve = tuple[str, str, str, str]
S2_CURVES: tuple[Curve, ...] = (
    ("psnr_output_cloud", "output, under the cloud", "-", "C0"),
    ("psnr_cloudy_cloud", "cloudy input, under the cloud", ":", "C0"),
    ("psnr_local_fill_cloud", "local fill, under the cloud", "--", "C0"),
    ("psnr_output_clear", "output, clear pixels", "-", "C1"),
    ("psnr_cloudy_clear", "cloudy input, clear pixels", ":", "C1"),
)


def _prefixed(prefix: str, curves: tuple[Curve, ...]) -> tuple[Curve, ...]:
    return tuple((prefix + key, label, style, colour) for key, label, style, colour in curves)


def _rice(suffix: str) -> tuple[Curve, ...]:
    """DE's curves on one held-out RICE2 set (whole images): output, reference network alone, cloudy input."""
    return (
        (f"psnr_output{suffix}", "output", "-", "C0"),
        (f"psnr_reference{suffix}", "reference network", "--", "C2"),
        (f"psnr_cloudy{suffix}", "cloudy input", ":", "C0"),
    )


PSNR = "PSNR (dB)"
DETECTOR_CURVES: tuple[Curve, ...] = (
    ("iou_rice2", "IoU with the labels, 256²", "-", "C0"),
    ("iou_rice2-512", "IoU with the labels, 512²", "-", "C1"),
    ("clear_flagged_rice2", "clear images' pixels flagged, 256²", ":", "C0"),
    ("clear_flagged_rice2-512", "clear images' pixels flagged, 512²", ":", "C1"),
)
# title, y-axis label, curves
PANELS: tuple[tuple[str, str, tuple[Curve, ...]], ...] = (
    ("held-out places, simulated clouds", PSNR, S2_CURVES),
    ("held-out real cloudy / clear pairs", PSNR, _prefixed("real_", S2_CURVES)),
    ("held-out RICE2 pairs, 256²", PSNR, _rice("")),
    ("held-out RICE2 pairs, 512²", PSNR, _rice("_512")),
    ("cloud detector on the held-out RICE2 pairs", "IoU / share of pixels", DETECTOR_CURVES),
)


def read_log(path: Path) -> list[dict[str, float]]:
    """The validation lines of a run's log, in step order."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted((line for line in lines if "step" in line), key=lambda line: line["step"])


def plot(lines: list[dict[str, float]], out: Path, title: str) -> None:
    """Write the PNG: one panel per validation set the log has."""
    # A RICE panel's keys also appear in S2 logs with suffixes (psnr_output_cloud): match keys exactly.
    panels = [panel for panel in PANELS if any(panel[2][0][0] in line for line in lines)]
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for axis, (name, ylabel, curves) in zip(axes[0], panels):
        for key, label, style, colour in curves:
            points = [(line["step"], line[key]) for line in lines if key in line]
            if points:
                steps, values = zip(*points)
                axis.plot(steps, values, style, color=colour, label=label, marker="." if style == "-" else None)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)


def main() -> None:
    """Read the arguments and write the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--title", default=None)
    args = parser.parse_args()
    plot(read_log(args.log), args.out, args.title or args.log.parent.name)


if __name__ == "__main__":
    main()
