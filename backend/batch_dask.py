"""Run the scenes of a batch on dask.distributed: one task per scene, each worker keeping its models loaded.

The only module that knows dask. A task (:func:`run_scene`) runs one job with :func:`backend.worker.execute`, as
``run`` does, in a worker process that keeps a :class:`~backend.model_cache.ModelCache` for its lifetime. While it
runs, the task sends its ``started`` and ``progress`` events to the client through the worker's event log (topic
:data:`TOPIC`); its answer (``finished``, ``error`` or ``cancelled``) is the task's result. A task that dies (a
killed worker) is a failed scene with the reason dask gives, and the other scenes go on.

Workers of a running cluster (``--scheduler``) must import ``backend`` and ``models`` as this process does: start
them with the plugin folder as working directory (or on ``PYTHONPATH``) in the backend environment. Resources (e.g.
``GPU=1``) are matched by dask, not checked here: a LocalCluster gives each worker the resources asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.job import Job
from backend.model_cache import ModelCache
from backend.protocol import EXIT_INTERNAL
from backend.reporter import Reporter

TOPIC = "cloud-removal-scene"
# The one cache of a worker process: every task the process runs finds the models its earlier tasks loaded.
_CACHE = ModelCache()


@dataclass(frozen=True)
class SceneAnswer:
    """How one scene ended: the terminal event of its job (``finished``, ``error``, ``cancelled``) and exit code."""

    name: str
    kind: str
    code: int
    data: dict[str, Any] = field(default_factory=dict)


# (scene name, event kind, event data): what the caller sees while scenes run.
OnEvent = Callable[[str, str, dict[str, Any]], None]


@contextlib.contextmanager
def cluster_client(
    workers: int | None = None, scheduler: str | None = None, resources: Mapping[str, float] | None = None
) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a new LocalCluster of ``workers`` one-thread processes.

    A LocalCluster's workers each get ``resources`` (e.g. ``{"GPU": 1}``) so tasks that ask for them can run.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers or 1, threads_per_worker=1, processes=True, dashboard_address=None,
            resources=dict(resources or {}) or None, silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        yield client


def run_scenes(
    client: Any, jobs: Mapping[str, Job], on_event: OnEvent, resources: Mapping[str, float] | None = None
) -> list[SceneAnswer]:
    """Run each named job as one task; report events as they come; return each scene's answer as it finishes."""
    from distributed import as_completed

    answered: set[str] = set()

    def relay(event: tuple[float, Any]) -> None:
        name, kind, data = event[1]
        if name not in answered:  # a late progress event must not follow the scene's answer
            on_event(name, kind, data)

    client.subscribe_topic(TOPIC, relay)
    batch = uuid.uuid4().hex[:8]  # a rerun on the same cluster must not be answered with an earlier run's result
    futures = {
        client.submit(run_scene, name, job.to_dict(), key=f"scene-{name}-{batch}", resources=resources): name
        for name, job in jobs.items()
    }
    answers = []
    try:
        for future in as_completed(futures):
            name = futures[future]
            answered.add(name)
            try:
                answer: SceneAnswer = future.result()
            except Exception as error:  # the task itself failed: a killed worker, a broken environment
                message = f"The dask task failed ({type(error).__name__}: {error})"
                answer = SceneAnswer(name, "error", EXIT_INTERNAL, {"code": "internal", "message": message})
            answers.append(answer)
            on_event(name, answer.kind, answer.data)
    finally:
        client.unsubscribe_topic(TOPIC)
    return answers


class _TaskReporter(Reporter):
    """Keeps the job's answer, and sends its start and progress (each tenth) to the client."""

    def __init__(self, name: str, send: Callable[[Any], None]) -> None:
        super().__init__(events=True, out=open(os.devnull, "w"))
        self.name = name
        self.send = send
        self.answer: tuple[str, dict[str, Any]] = ("error", {"code": "internal", "message": "The job gave no answer"})
        self._tenth = -1

    def emit(self, kind: str, **data: Any) -> None:
        if kind in ("finished", "error", "cancelled"):
            self.answer = (kind, data)
            return
        if kind == "progress" and data.get("phase") is None:
            tenth = 10 * int(data["done"]) // max(1, int(data["total"]))
            if tenth == self._tenth:
                return
            self._tenth = tenth
        elif kind == "log" and data.get("level") not in ("warning", "error"):
            return
        self.send((self.name, kind, data))


def run_scene(name: str, job_data: dict[str, Any]) -> SceneAnswer:
    """The task: run one scene's job in this worker, with the worker's kept models."""
    from distributed import get_worker

    from backend.worker import execute

    worker = get_worker()
    job = Job.from_dict(job_data)
    reporter = _TaskReporter(name, lambda message: worker.log_event(TOPIC, message))
    try:
        with _CACHE.active(job):
            code = execute(job, reporter, lambda: False)
    finally:
        reporter.out.close()
    kind, data = reporter.answer
    return SceneAnswer(name, kind, code, data)
