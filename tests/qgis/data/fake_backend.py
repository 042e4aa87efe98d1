#!/usr/bin/python3
"""A stand-in for the backend's Python, for testing the plugin's runner without torch or a model.

Called like the real one (``python -E -u -c <launcher> <plugin folder> run --job FILE --events``, or
``cloudmask --job FILE --events``), it reads the JSON job, ignores everything but its outputs and acts out the
scenario named by ``FAKE_BACKEND_SCENARIO``:

- ``ok``: progress over 4 tiles, events split across writes, then writes the output via its partial file (and the
  extra outputs the job names, ``cloud_mask_output`` and ``change_output``; the ``mask`` and ``probability`` of a
  cloud mask job).
- ``copy``: as ``ok``, but every output is a byte copy of the first optical raster (a real GeoTIFF, for chains and
  styling).
- ``slow``: writes the partial file and reports 1 tile of 200 every 0.1 s; dies on SIGTERM without cleaning up.
- ``error``: an ``error`` event and exit code 2.
- ``crash``: a traceback on stderr and exit code 1.
- ``missing_module``: what Python prints when the environment lacks a package, exit code 1.
- ``killed``: the process kills itself (as the kernel's out-of-memory killer would).

``serve`` (the warm worker) answers like a backend without that command (a usage error, exit code 2) unless
``FAKE_BACKEND_SERVE`` is set: then it says it is ready, reads one JSON job per line on stdin and acts out each as
above, with the scenario named by the start of the output's file name (``slow.tif``, ``error_2.tif``) or else
``FAKE_BACKEND_SCENARIO``; ``started`` carries its ``pid``; ``slow`` stops at ``{"cancel": true}`` (removing its
partial file, answering ``cancelled``); ``killed`` kills the worker; the end of stdin ends it.

With ``FAKE_BACKEND_RECORD`` set, it first writes its working directory, arguments and job there as JSON.
``models --json`` prints ``FAKE_BACKEND_MODELS`` (a JSON file) or an empty list. The ``finished`` event reports a
``cloud_fraction`` of 0.25 when the run keeps clear pixels or makes a cloud mask, and the extra outputs it wrote.
"""

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

EXTRAS = {"mask": "cloud_mask_output", "change": "change_output"}
SCENARIOS = ("ok", "copy", "slow", "error", "crash", "missing_module", "killed")


def outputs_of(job: dict) -> list:
    """The files a job writes: its output and extras, or a cloud mask's mask and probability."""
    keys = ("output", *EXTRAS.values(), "mask", "probability")
    return [job[key] for key in keys if job.get(key)]


def write(path: str, source: str | None) -> None:
    """Write one output through its partial file."""
    partial = path + ".partial"
    if source is None:
        with open(partial, "wb") as file:
            file.write(b"not really a GeoTIFF")
    else:
        shutil.copyfile(source, partial)
    os.replace(partial, path)


def emit(kind: str, **data: object) -> None:
    print(json.dumps({"event": kind, **data}), flush=True)


def main() -> int:
    arguments = sys.argv[1:]
    scenario = os.environ.get("FAKE_BACKEND_SCENARIO", "ok")
    job = {}
    if "--job" in arguments:
        job = json.loads(Path(arguments[arguments.index("--job") + 1]).read_text(encoding="utf-8"))
    if os.environ.get("FAKE_BACKEND_RECORD"):
        with open(os.environ["FAKE_BACKEND_RECORD"], "w", encoding="utf-8") as file:
            json.dump({"cwd": os.getcwd(), "arguments": arguments, "job": job}, file)
    command = arguments[arguments.index("-c") + 3]  # after -c <launcher> <plugin folder>
    if command == "models" and scenario in ("ok", "copy"):
        models = os.environ.get("FAKE_BACKEND_MODELS")
        print(Path(models).read_text() if models else "[]")
        return 0
    if command == "serve":
        if not os.environ.get("FAKE_BACKEND_SERVE"):
            print("__main__.py: error: argument command: invalid choice: 'serve'", file=sys.stderr)
            return 2
        return serve(scenario)
    return act(command, job, scenario, lambda: False)


def act(command: str, job: dict, scenario: str, should_stop) -> int:
    """Act out one job; ``should_stop`` is the warm worker's cancel (the one-shot run is stopped by SIGTERM)."""
    outputs = outputs_of(job)
    output = outputs[0]
    partial = output + ".partial"
    emit("started", algorithm=command, tiles=4, pid=os.getpid())
    if scenario in ("ok", "copy"):
        line = json.dumps({"event": "progress", "done": 1, "total": 4}) + "\n"
        sys.stdout.write(line[:10])  # a line split across two writes
        sys.stdout.flush()
        time.sleep(0.05)
        sys.stdout.write(line[10:])
        print("a line that is not an event", flush=True)
        for done in (2, 3, 4):
            emit("progress", done=done, total=4)
        optical = job["optical"]
        source = (optical[0] if isinstance(optical, list) else optical) if scenario == "copy" else None
        for path in outputs:
            write(path, source)
        stats = {"seconds": 0.1}
        if job.get("keep_clear") or job.get("cloud_mask_output") or command == "cloudmask":
            stats["cloud_fraction"] = 0.25
        extras = {kind: job[key] for kind, key in EXTRAS.items() if job.get(key)}
        if extras:
            stats["extra_outputs"] = extras
        emit("finished", output=output, stats=stats)
        return 0
    if scenario == "slow":
        with open(partial, "wb") as file:
            file.write(b"half")
        for done in range(1, 201):
            if should_stop():
                os.unlink(partial)
                emit("cancelled")
                return 130
            emit("progress", done=done, total=200)
            time.sleep(0.1)
        return 0
    if scenario == "error":
        emit("error", code="bad_input", message="S1 layer has 1 band; DB-CR needs VV and VH")
        return 2
    if scenario == "crash":
        print("Traceback (most recent call last):\nZeroDivisionError: division by zero", file=sys.stderr)
        return 1
    if scenario == "missing_module":
        print("ModuleNotFoundError: No module named 'torch'", file=sys.stderr)
        return 1
    if scenario == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    return 1


def serve(default_scenario: str) -> int:
    """The warm worker: jobs from stdin, one at a time, a cancel line stopping the current one."""
    jobs: list = []
    arrived, stop = threading.Condition(), threading.Event()

    def read() -> None:
        for raw in sys.stdin:
            message = json.loads(raw) if raw.strip() else None
            with arrived:
                if message == {"cancel": True}:
                    stop.set()
                elif message is not None:
                    jobs.append(message)
                arrived.notify()
        with arrived:
            jobs.append(None)
            arrived.notify()

    threading.Thread(target=read, daemon=True).start()
    emit("log", level="info", message="Worker ready")
    while True:
        with arrived:
            arrived.wait_for(lambda: bool(jobs))
            job = jobs.pop(0)
        if job is None:
            return 0
        stop.clear()
        name = os.path.basename(str(job.get("output", "")))
        scenario = next((known for known in SCENARIOS if name.startswith(known)), default_scenario)
        if act("run", job, scenario, stop.is_set) not in (0, 2, 130):
            emit("error", code="internal", message=f"Internal error (scenario {scenario})")


if __name__ == "__main__":
    sys.exit(main())
