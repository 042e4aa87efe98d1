"""Creating the backend's own Python environment from inside QGIS: plan, pip's errors in words, the task.

The backend needs PyTorch, rasterio and onnxruntime, which must never go into QGIS's own Python (QGIS's numpy,
GDAL and PyQt would clash with current wheels, and a broken import there takes QGIS down). So the set-up creates a
virtual environment in the QGIS profile, installs the pinned requirements into it with pip, checks it with
``python -m backend models --json`` and stores its Python in the settings.

The pure parts (which requirements, which steps, what a pip failure means) are functions; :class:`SetupTask`
only runs the steps, one ``QProcess`` at a time, and relays their output lines.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from qgis.core import QgsSettings, QgsTask
from qgis.PyQt.QtCore import QProcess, QProcessEnvironment, pyqtSignal

from ..backend import protocol
from ..processing_provider.backend_process import backend_command
from ..processing_provider.settings import PLUGIN_DIR, venv_python
from .environment import interpret_check
from .pip_errors import explain_pip_failure

REQUIREMENTS = PLUGIN_DIR / "backend" / "requirements.txt"
REQUIREMENTS_NODEPS = PLUGIN_DIR / "backend" / "requirements-nodeps.txt"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
"""PyTorch's CPU-only wheels: a far smaller download than PyPI's Linux build, which bundles CUDA (several GB). The
default on Linux without an NVIDIA GPU (falling back to PyPI when that index cannot be reached); the setting
``cloud_removal/torch_index_url`` names another index."""


def default_torch_index(gpu: bool, platform: str = sys.platform) -> str:
    """The index torch comes from when the user set none: CPU-only wheels on Linux without a GPU, else PyPI ("").

    PyPI's Windows and macOS wheels are CPU builds already; its Linux wheel carries CUDA, useless without a GPU.
    """
    return CPU_TORCH_INDEX if platform.startswith("linux") and not gpu else ""


def base_python_candidates(prefix: Path = Path(sys.base_exec_prefix), platform: str = sys.platform) -> list[Path]:
    """Return where a Python able to create a virtual environment may be, best first.

    Inside QGIS ``sys.executable`` is often QGIS itself, so the interpreter is looked up by its prefix (the
    Python QGIS was built with) and then on the PATH.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if platform == "win32":
        candidates = [prefix / "python.exe", prefix / "python3.exe"]
    else:
        candidates = [prefix / "bin" / f"python{version}", prefix / "bin" / "python3"]
    for name in (f"python{version}", "python3", "python"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    unique: list[Path] = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def find_base_python() -> Path | None:
    """Return the first existing :func:`base_python_candidates`, or None."""
    return next((path for path in base_python_candidates() if path.is_file()), None)


def select_requirements(text: str, gpu: bool) -> str:
    """Return the requirements to install: the pinned file, GPU builds where they are separate packages.

    With an NVIDIA GPU, ``onnxruntime-gpu`` replaces ``onnxruntime`` (same version). PyTorch stays pinned: PyPI's
    Linux wheel already runs on CUDA (on Windows, set a CUDA index in ``cloud_removal/torch_index_url``).
    """
    lines = []
    for line in text.splitlines():
        if gpu and re.match(r"^\s*onnxruntime\s*==", line):
            line = re.sub(r"^\s*onnxruntime", "onnxruntime-gpu", line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def pinned(text: str, package: str) -> str | None:
    """Return the requirement line pinning ``package`` (e.g. ``torch==2.13.0``), or None."""
    for line in text.splitlines():
        if re.match(rf"^\s*{re.escape(package)}\s*==", line):
            return line.split("#", 1)[0].strip()
    return None


@dataclass(frozen=True)
class Step:
    """One program the set-up runs: what it is called in the log, its command, its share of the progress bar."""

    label: str
    program: str
    arguments: tuple[str, ...]
    weight: float
    kind: str  # "venv", "pip" or "check": how its output is read and its failure explained
    optional: bool = False  # a failure is logged and the set-up goes on (a later step covers it)


def build_steps(
    base_python: Path,
    venv: Path,
    requirements: Path,
    requirements_text: str,
    torch_index: str = "",
    torch_index_optional: bool = False,
) -> list[Step]:
    """Return the steps that create ``venv`` and install ``requirements`` (and the no-deps file) into it.

    Args:
        base_python: the Python that creates the environment (never installed into).
        venv: the environment's folder.
        requirements: the selected requirements file (see :func:`select_requirements`).
        requirements_text: its content, to find the torch pin for ``torch_index``.
        torch_index: a pip index for torch alone (e.g. :data:`CPU_TORCH_INDEX`), or empty for PyPI.
        torch_index_optional: when that index fails (unreachable), go on: the next step takes torch from PyPI.
    """
    python = str(venv_python(venv))
    pip = ("-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off")
    steps = [Step("Create the environment", str(base_python), ("-m", "venv", str(venv)), 3, "venv")]
    torch = pinned(requirements_text, "torch")
    if torch_index and torch:
        only_torch = (*pip, torch, "--index-url", torch_index)
        label = f"Install {torch} from {torch_index}"
        steps.append(Step(label, python, only_torch, 30, "pip", optional=torch_index_optional))
    packages = (*pip, "--prefer-binary", "-r", str(requirements))
    steps.append(Step("Install the backend's packages", python, packages, 80, "pip"))
    nodeps = (*pip, "--no-deps", "-r", str(REQUIREMENTS_NODEPS))
    steps.append(Step("Install the packages without dependencies", python, nodeps, 5, "pip"))
    program, arguments = backend_command(Path(python), ["models", "--json"])
    steps.append(Step("Check the backend", program, tuple(arguments), 5, "check"))
    return steps


class PipProgress:
    """Estimates how far one pip run is from its output lines (pip reports no total)."""

    def __init__(self) -> None:
        """Start at nothing collected."""
        self.collected = 0
        self.fraction = 0.0

    def feed(self, line: str) -> float:
        """Read one line; return the estimated fraction done (0-1, never decreasing)."""
        stripped = line.strip()
        # "Processing <file>" is pip's "Collecting" for a wheel on disk (a wheelhouse, a file:// index)
        if stripped.startswith(("Collecting ", "Processing ", "Requirement already satisfied")):
            self.collected += 1
            estimate = 0.7 * (1 - 0.93**self.collected)
        elif stripped.startswith("Installing collected packages"):
            estimate = 0.8
        elif stripped.startswith("Successfully installed"):
            estimate = 1.0
        else:
            estimate = self.fraction
        self.fraction = max(self.fraction, estimate)
        return self.fraction


def proxy_url(settings: Mapping[str, object]) -> str:
    """Return the proxy URL of QGIS's network settings (``proxy/...`` keys), or empty when none is set."""
    if str(settings.get("proxyEnabled", "false")).lower() not in ("true", "1"):
        return ""
    host = str(settings.get("proxyHost", "") or "").strip()
    if not host:
        return ""
    scheme = "socks5" if "socks" in str(settings.get("proxyType", "")).lower() else "http"
    user, password = str(settings.get("proxyUser", "") or ""), str(settings.get("proxyPassword", "") or "")
    credentials = f"{user}:{password}@" if user else ""
    port = str(settings.get("proxyPort", "") or "").strip()
    return f"{scheme}://{credentials}{host}{':' + port if port else ''}"


def qgis_proxy() -> str:
    """Return the proxy URL configured in QGIS, for pip."""
    settings = QgsSettings()
    keys = ("proxyEnabled", "proxyHost", "proxyPort", "proxyUser", "proxyPassword", "proxyType")
    return proxy_url({key: settings.value(f"proxy/{key}", "") for key in keys})


class SetupTask(QgsTask):
    """Runs the set-up steps in the background; ``line`` carries every output line, ``error`` says why it failed."""

    line = pyqtSignal(str)

    def __init__(
        self,
        steps: list[Step],
        folder: Path,
        gpu: bool = False,
        proxy: str = "",
        prepare: Callable[[], None] | None = None,
    ) -> None:
        """Run ``steps`` (creating ``folder``); ``prepare`` runs first in the task (e.g. writes the requirements)."""
        super().__init__("Setting up the cloud-removal backend", QgsTask.Flag.CanCancel)
        self.steps, self.folder, self.gpu, self.proxy, self.prepare = steps, folder, gpu, proxy, prepare
        self.error = ""

    def run(self) -> bool:
        """Run every step; stop at the first failure or on cancel."""
        try:
            if self.prepare is not None:
                self.prepare()
        except OSError as error:
            self.error = explain_pip_failure([str(error)], self.folder, self.gpu)
            return False
        total, done = sum(step.weight for step in self.steps), 0.0
        for step in self.steps:
            self.line.emit(f"▶ {step.label}")
            if not self._run(step, done, total):
                if not step.optional or self.isCanceled():
                    return False
                self.line.emit(f"⚠ {step.label} did not work ({self.error}); going on without it")
                self.error = ""
            done += step.weight
            self.setProgress(100.0 * done / total)
        return True

    def _run(self, step: Step, done: float, total: float) -> bool:
        process = QProcess()
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        environment = QProcessEnvironment.systemEnvironment()
        for variable in ("PYTHONHOME", "PYTHONPATH"):  # QGIS's own Python must not leak into the new one
            environment.remove(variable)
        if self.proxy:
            for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                environment.insert(variable, self.proxy)
        process.setProcessEnvironment(environment)
        process.start(step.program, list(step.arguments))
        if not process.waitForStarted(30_000):
            self.error = f"{step.label}: could not start {step.program} ({process.errorString()})."
            return False
        lines, progress = protocol.LineBuffer(), PipProgress()
        tail: deque[str] = deque(maxlen=400)
        output: list[str] = []
        while True:
            process.waitForReadyRead(200)
            chunk = bytes(process.readAll()).decode("utf-8", "replace")
            ended = process.state() == QProcess.ProcessState.NotRunning
            for text in lines.feed(chunk) + (lines.flush() if ended else []):
                text = text.rstrip("\r")
                tail.append(text)
                if step.kind == "check":
                    output.append(text)  # JSON: parsed below, not shown
                else:
                    self.line.emit(text)
                self.setProgress(100.0 * (done + step.weight * progress.feed(text)) / total)
            if self.isCanceled():
                process.kill()
                process.waitForFinished(5000)
                self.error = "Cancelled: the environment is incomplete; run the set-up again to finish it."
                return False
            if ended:
                break
        exit_code = process.exitCode() if process.exitStatus() == QProcess.ExitStatus.NormalExit else -2
        if step.kind == "check":
            state = interpret_check(step.program, exit_code, "\n".join(output), "\n".join(output))
            self.line.emit(state.describe())
            if state.kind != "found":
                self.error = f"The new backend does not work: {state.why}"
            return state.kind == "found"
        if exit_code != 0:
            self.error = explain_pip_failure(tail, self.folder, self.gpu)
        return exit_code == 0
