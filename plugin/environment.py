"""What this computer offers the backend: the NVIDIA GPU, and whether the backend works (and its models).

The backend's state comes from running ``<backend python> -m backend models --json`` once: it proves the
environment imports torch and the registry, and lists the models for the dock. It takes seconds, so it runs in a
``QProcess`` (QGIS stays responsive) and its answer is cached on disk, keyed by what could change it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.PyQt.QtCore import QObject, QProcess, pyqtSignal

from ..processing_provider.backend_process import backend_command, backend_problem
from ..processing_provider.settings import PLUGIN_DIR, profile_dir

CACHE_FILE = "models-cache.json"


@dataclass(frozen=True)
class Gpu:
    """One NVIDIA GPU as ``nvidia-smi`` reports it."""

    name: str
    memory_mib: int

    def describe(self) -> str:
        """Return e.g. ``NVIDIA H100 80GB HBM3 (80 GB)``."""
        return f"{self.name} ({self.memory_mib / 1024:.0f} GB)"


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader`` (e.g. ``NVIDIA A10, 23028 MiB``)."""
    gpus = []
    for line in text.splitlines():
        name, _, memory = line.rpartition(",")
        digits = "".join(ch for ch in memory if ch.isdigit())
        if name.strip() and digits:
            gpus.append(Gpu(name.strip(), int(digits)))
    return gpus


def detect_gpus(timeout: float = 5.0) -> list[Gpu]:
    """Return the NVIDIA GPUs ``nvidia-smi`` reports; none when it is missing, fails or hangs."""
    program = shutil.which("nvidia-smi")
    if program is None:
        return []
    try:
        completed = subprocess.run(
            [program, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(completed.stdout) if completed.returncode == 0 else []


def describe_device(gpus: list[Gpu]) -> str:
    """Return the one line the dock shows about the device."""
    if not gpus:
        return "No NVIDIA GPU found: runs on the CPU (slower; smaller models and NFE help)."
    return "GPU: " + "; ".join(gpu.describe() for gpu in gpus)


@dataclass(frozen=True)
class BackendState:
    """Whether the backend works: ``found``, ``missing`` or ``broken``, with why, and its models when found."""

    kind: str
    python: str
    why: str = ""
    models: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """Return the status line's text."""
        if self.kind == "found":
            trained = sum(1 for model in self.models if model.get("kind") != "config")
            if not trained:
                return "Backend ready; no trained model is installed yet."
            return f"Backend ready, {trained} trained model{'s' if trained != 1 else ''}."
        if self.kind == "missing":
            return f"Backend missing: {self.why}"
        if self.kind == "checking":
            return "Checking the backend…"
        return f"Backend broken: {self.why}"


def interpret_check(python: str, exit_code: int, stdout: str, stderr: str) -> BackendState:
    """Turn the outcome of ``python -m backend models --json`` into a state with a reason a user understands."""
    if exit_code == 0:
        try:
            models = json.loads(stdout[stdout.index("[") :])
        except (ValueError, json.JSONDecodeError):
            return BackendState("broken", python, "its model list could not be read; repair it with “Set up…”.")
        return BackendState("found", python, "", [m for m in models if isinstance(m, dict)])
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    missing = next((line for line in reversed(lines) if "No module named" in line), None)
    if missing:
        module = missing.split("No module named", 1)[1].strip(" '\".")
        return BackendState("broken", python, f"it lacks the package {module}; repair it with “Set up…”.")
    if exit_code == -1:
        return BackendState("broken", python, "its Python could not be started (is it a Python executable?).")
    last = lines[-1] if lines else f"exit code {exit_code}"
    return BackendState("broken", python, f"the self-check failed ({last[:200]}).")


def cache_key(python: Path) -> str:
    """What the cached model list depends on: the Python and the weights folders (names, sizes, times)."""
    parts = [str(python)]
    for candidate in (python, PLUGIN_DIR / "models" / "weights", profile_dir() / "models"):
        try:
            stat = candidate.stat()
            parts.append(f"{stat.st_mtime_ns}:{stat.st_size}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


def cached_state(python: Path) -> BackendState | None:
    """Return the cached state for ``python`` if nothing it depends on changed since."""
    try:
        data = json.loads((profile_dir() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("key") != cache_key(python):
        return None
    return BackendState("found", str(python), "", list(data.get("models") or []))


def store_state(state: BackendState) -> None:
    """Cache a working backend's model list."""
    if state.kind != "found":
        return
    try:
        profile_dir().mkdir(parents=True, exist_ok=True)
        data = {"key": cache_key(Path(state.python)), "models": state.models}
        (profile_dir() / CACHE_FILE).write_text(json.dumps(data), encoding="utf-8")
    except OSError:
        pass  # a cache that cannot be written only costs a later check


class BackendCheck(QObject):
    """Runs the backend's self-check in a QProcess and reports a :class:`BackendState` (``done``)."""

    done = pyqtSignal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        """Create an idle check."""
        super().__init__(parent)
        self._process: QProcess | None = None
        self._python = ""

    def start(self, python: Path, use_cache: bool = True) -> BackendState | None:
        """Check ``python``; return the state at once when known (missing, cached), else None and emit later."""
        problem = backend_problem(python)
        if problem:
            return BackendState("missing", str(python), f"there is no Python at {python}.")
        if use_cache and (state := cached_state(python)) is not None:
            return state
        self.cancel()
        program, arguments = backend_command(python, ["models", "--json"])
        process = QProcess(self)
        environment = process.processEnvironment()
        if not environment.keys():
            environment = environment.systemEnvironment()
        for variable in ("PYTHONHOME", "PYTHONPATH"):
            environment.remove(variable)
        process.setProcessEnvironment(environment)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self._process, self._python = process, str(python)
        process.start(program, arguments)
        return None

    def running(self) -> bool:
        """Return True while a check runs."""
        return self._process is not None

    def cancel(self) -> None:
        """Stop a running check."""
        if self._process is not None:
            process, self._process = self._process, None
            process.kill()
            process.waitForFinished(1000)
            process.deleteLater()

    def _finished(self, exit_code: int, _status: object = None) -> None:
        process = self._process
        if process is None:
            return
        stdout = bytes(process.readAllStandardOutput()).decode("utf-8", "replace")
        stderr = bytes(process.readAllStandardError()).decode("utf-8", "replace")
        self._process = None
        process.deleteLater()
        state = interpret_check(self._python, int(exit_code), stdout, stderr)
        store_state(state)
        self.done.emit(state)

    def _error(self, error: object) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            self._process.deleteLater()
            self._process = None
            self.done.emit(interpret_check(self._python, -1, "", ""))
