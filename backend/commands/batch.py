"""``python -m backend batch ALGORITHM --scenes FILE.csv --out-dir DIR``: many scenes on dask.distributed.

One task per scene (see backend/batch.py for the CSV file, backend/batch_dask.py for the tasks) on a LocalCluster
of ``--workers`` one-thread processes, or on a running cluster (``--scheduler tcp://...``). The options of ``run``
apply to every scene. A scene whose output is complete (no ``.partial`` beside it, the run's tags in it) is
skipped, so a rerun finishes what is left. A failed scene is named with its reason; the others go on.

With ``--events`` stdout carries protocol events: a scene's own events carry its ``scene`` name; ``progress``
events with ``unit: "scenes"`` count finished scenes; the last event, without ``scene``, is ``finished`` (every
scene done) or ``error`` (naming the failed scenes in ``failed``). Without it, readable lines go to stderr.
"""

from __future__ import annotations

import argparse
import os
import threading
from typing import Any

from backend.errors import BackendError, BadInputError
from backend.job import JOB_FIELDS, Job
from backend.protocol import EXIT_INTERNAL, EXIT_OK, EXIT_USER_ERROR
from backend.reporter import Reporter

# Options of run that a scene list gives per scene instead.
PER_SCENE = ("optical", "extra_optical", "sar", "output")


def register(subparsers: Any) -> None:
    """Add the ``batch`` command."""
    parser = subparsers.add_parser(
        "batch",
        help="remove clouds from many scenes on dask.distributed",
        description="Run one job per scene of a CSV list (header optical,sar,output) on a dask LocalCluster or a "
        "running dask cluster; outputs go to --out-dir. Takes the options of run for every scene.",
    )
    parser.add_argument("algorithm", help="the method: dbcr, diffcr or de")
    parser.add_argument("--scenes", required=True, help="CSV file: optical (dates separated by ;), sar, output")
    parser.add_argument("--out-dir", dest="out_dir", required=True, help="folder of the outputs (created if needed)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="worker processes of the LocalCluster (default 1)")
    where.add_argument("--scheduler", default=None, help="address of a running dask scheduler, e.g. tcp://host:8786")
    parser.add_argument(
        "--resources", default=None, help="dask resources each scene needs, e.g. GPU=1 (workers must offer them)"
    )
    for action in _run_options():
        parser._add_action(action)
    parser.add_argument("--job", dest="job_file", default=None, help="JSON file with settings for every scene")
    parser.add_argument("--events", action="store_true", help="write JSON-line events on stdout")
    parser.set_defaults(handler=handle)


def _run_options() -> list[argparse.Action]:
    """The job options of ``run`` (model, NFE, device, tiling, ...), so both commands always take the same."""
    from backend.commands import run

    holder = argparse.ArgumentParser(add_help=False)
    subparsers = holder.add_subparsers()
    run.register(subparsers)
    run_parser = subparsers.choices["run"]
    return [
        action
        for action in run_parser._actions
        if action.option_strings and action.dest in JOB_FIELDS and action.dest not in PER_SCENE
    ]


def parse_resources(text: str | None) -> dict[str, float]:
    """``GPU=1,MEMORY=8e9`` as a dict.

    Raises:
        BadInputError: a part is not NAME=NUMBER.
    """
    resources: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        try:
            resources[name.strip()] = float(value)
        except ValueError:
            raise BadInputError(f"Resources must be NAME=NUMBER such as GPU=1, not {part.strip()!r}") from None
    return resources


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Every scene's settings: a ``--job`` file overlaid with the flags given."""
    from backend.commands.run import read_job_file

    data: dict[str, Any] = read_job_file(args.job_file) if args.job_file else {}
    for name in PER_SCENE:
        data.pop(name, None)
    for name in JOB_FIELDS:
        if hasattr(args, name) and name not in PER_SCENE:
            data[name] = getattr(args, name)
    if data.get("threads") is None and not args.scheduler:
        # N one-job workers on this machine share its cores rather than each taking them all.
        data["threads"] = max(1, (os.cpu_count() or 1) // (args.workers or 1))
    return data


class BatchReport:
    """Events (``--events``) or readable lines for a batch; safe to call from dask's thread and the main one."""

    def __init__(self, events: bool) -> None:
        self.reporter = Reporter(events=events)
        self._lock = threading.Lock()

    def scene(self, name: str, kind: str, data: dict[str, Any]) -> None:
        """One event of one scene."""
        with self._lock:
            if self.reporter.events:
                self.reporter.emit(kind, scene=name, **data)
                return
            text = _scene_text(kind, data)
            if text:
                self.reporter.err.write(f"[{name}] {text}\n")
                self.reporter.err.flush()

    def overall(self, kind: str, text: str, **data: Any) -> None:
        """An event of the whole batch, or its readable ``text``."""
        with self._lock:
            if self.reporter.events:
                self.reporter.emit(kind, **data)
            else:
                self.reporter.err.write(text + "\n")
                self.reporter.err.flush()


def _scene_text(kind: str, data: dict[str, Any]) -> str | None:
    if kind == "started":
        return f"started: {data.get('tiles', '?')} tiles on {data.get('device', '?')}"
    if kind == "progress":
        done, total = int(data["done"]), max(1, int(data["total"]))
        return f"{done}/{total} {'adaptation steps' if data.get('phase') else 'tiles'} ({100 * done // total}%)"
    if kind == "log":
        return f"{data.get('level', 'info')}: {data.get('message', '')}"
    if kind == "finished":
        return f"skipped: {data.get('output')} is complete" if data.get("skipped") else f"wrote {data.get('output')}"
    if kind == "error":
        return f"failed: {data.get('message')}"
    if kind == "cancelled":
        return "cancelled"
    return None


def handle(args: argparse.Namespace) -> int:
    """Run the batch. Returns 0 when every scene is done, 2 when one failed (1 when a failure was internal)."""
    from backend.batch import expected_tags, is_complete, read_scenes

    report = BatchReport(args.events)
    try:
        settings = settings_from_args(args)
        resources = parse_resources(args.resources)
        if args.workers is not None and args.workers < 1:
            raise BadInputError(f"--workers must be at least 1, not {args.workers}")
        os.makedirs(args.out_dir, exist_ok=True)
        scenes = read_scenes(args.scenes, args.out_dir, settings)
        failed = {scene.name: scene.problem or "" for scene in scenes if scene.job is None}
        to_run: dict[str, Job] = {}
        skipped: list[str] = []
        for scene in scenes:
            if scene.job is None:
                continue
            if is_complete(scene.job.output, expected_tags(scene.job)):
                skipped.append(scene.job.output)
            else:
                to_run[scene.name] = scene.job
    except BackendError as error:
        report.overall("error", f"Error: {error.message}", code=error.code, message=error.message)
        return EXIT_USER_ERROR
    except OSError as error:
        message = f"Cannot create the output folder {args.out_dir}: {error.strerror or error}"
        report.overall("error", f"Error: {message}", code="output", message=message)
        return EXIT_USER_ERROR
    total = len(scenes)
    done = 0

    def count(name: str, kind: str, data: dict[str, Any]) -> None:
        nonlocal done
        report.scene(name, kind, data)
        if kind in ("finished", "error", "cancelled"):
            done += 1
            report.overall("progress", f"Scenes: {done}/{total}", done=done, total=total, unit="scenes")

    for name, problem in failed.items():
        count(name, "error", {"code": "bad_input", "message": problem})
    for output in skipped:
        count(os.path.basename(output), "finished", {"output": output, "skipped": True})
    internal = False
    if to_run:
        from backend.batch_dask import cluster_client, run_scenes

        where = args.scheduler or f"a LocalCluster of {args.workers or 1} workers"
        report.overall("log", f"Running {len(to_run)} of {total} scenes on {where}", level="info",
                       message=f"Running {len(to_run)} of {total} scenes on {where}")  # fmt: skip
        with cluster_client(args.workers, args.scheduler, resources) as client:
            for answer in run_scenes(client, to_run, count, resources or None):
                if answer.kind != "finished":
                    failed[answer.name] = answer.data.get("message", answer.kind)
                    internal = internal or answer.code == EXIT_INTERNAL
    return _summary(report, args.out_dir, total, skipped, failed, internal)


def _summary(
    report: BatchReport, out_dir: str, total: int, skipped: list[str], failed: dict[str, str], internal: bool
) -> int:
    finished = total - len(skipped) - len(failed)
    stats = {"scenes": total, "finished": finished, "skipped": len(skipped)}
    text = f"{total} scenes: {finished} written, {len(skipped)} already complete, {len(failed)} failed"
    if not failed:
        report.overall("finished", text, output=out_dir, stats=stats)
        return EXIT_OK
    reasons = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
    message = f"{len(failed)} of {total} scenes failed ({reasons}); the others are in {out_dir}"
    failures = [{"scene": name, "message": reason} for name, reason in failed.items()]
    report.overall("error", f"{text}\n{message}", code="internal" if internal else "bad_input", message=message,
                   failed=failures, stats=stats)  # fmt: skip
    return EXIT_INTERNAL if internal else EXIT_USER_ERROR
