"""Setting up the backend from QGIS, without running pip: the plan, pip's errors in words, paths, the task.

The task is exercised with stand-in programs that print what pip prints, so its log, progress and error mapping
are tested in seconds and offline.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from qgis_support import REPO

PINNED = "# comment\ntorch==2.13.0\nnumpy==2.4.6\nonnxruntime==1.32.0\nonnx==1.23.2\n"


@pytest.fixture
def setup(plugin_package: Any) -> Any:
    from cloud_removal.plugin import backend_setup

    return backend_setup


def test_gpu_gets_onnxruntime_gpu_and_the_same_pinned_torch(setup: Any) -> None:
    selected = setup.select_requirements(PINNED, gpu=True)
    assert "onnxruntime-gpu==1.32.0" in selected.splitlines()
    assert "torch==2.13.0" in selected.splitlines()
    assert "onnx==1.23.2" in selected.splitlines()  # not onnx-gpu: only the exact package is swapped
    assert setup.select_requirements(PINNED, gpu=False) == PINNED


def test_the_real_requirements_pin_torch_and_onnxruntime(setup: Any) -> None:
    text = (REPO / "backend" / "requirements.txt").read_text()
    assert setup.pinned(text, "torch") == "torch==2.13.0"
    assert any(line.startswith("onnxruntime-gpu==") for line in setup.select_requirements(text, True).splitlines())


def test_steps_create_install_and_check(setup: Any, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    steps = setup.build_steps(Path("/usr/bin/python3"), venv, tmp_path / "req.txt", PINNED)
    assert [step.kind for step in steps] == ["venv", "pip", "pip", "check"]
    assert steps[0].program == "/usr/bin/python3" and steps[0].arguments == ("-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    assert all(step.program == python for step in steps[1:])  # never QGIS's own Python
    assert steps[1].arguments[-2:] == ("-r", str(tmp_path / "req.txt"))
    assert steps[2].arguments[-3:] == ("--no-deps", "-r", str(REPO / "backend" / "requirements-nodeps.txt"))
    assert "models" in steps[3].arguments and "--json" in steps[3].arguments


def test_a_torch_index_is_an_option_for_torch_alone(setup: Any, tmp_path: Path) -> None:
    steps = setup.build_steps(Path("/usr/bin/python3"), tmp_path, tmp_path / "r.txt", PINNED, setup.CPU_TORCH_INDEX)
    torch = steps[1]
    assert torch.arguments[-3:] == ("torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu")
    assert "--index-url" not in steps[2].arguments  # everything else from PyPI


def test_linux_without_a_gpu_takes_cpu_only_torch_by_default(setup: Any) -> None:
    assert setup.default_torch_index(gpu=False, platform="linux") == setup.CPU_TORCH_INDEX
    assert setup.default_torch_index(gpu=True, platform="linux") == ""  # PyPI's Linux wheel is the CUDA build
    assert setup.default_torch_index(gpu=False, platform="win32") == ""  # PyPI's Windows wheel is CPU-only
    steps = setup.build_steps(Path("/p"), Path("/v"), Path("/r"), PINNED, setup.CPU_TORCH_INDEX, True)
    assert steps[1].optional and not steps[2].optional


def test_paths(plugin_package: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cloud_removal.processing_provider import settings
    from qgis.core import QgsApplication

    assert settings.managed_venv_dir() == Path(QgsApplication.qgisSettingsDirPath()) / "cloud_removal" / "venv"
    assert settings.venv_python(Path("/v"), "linux") == Path("/v/bin/python")
    assert settings.venv_python(Path("C:/v"), "win32") == Path("C:/v/Scripts/python.exe")
    monkeypatch.setattr(settings, "PLUGIN_DIR", Path("/nowhere"))  # no developer .venv: the profile's
    assert settings.default_backend_python() == settings.venv_python(settings.managed_venv_dir())


def test_base_python_candidates(setup: Any) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    linux = setup.base_python_candidates(Path("/usr"), "linux")
    assert linux[:2] == [Path(f"/usr/bin/python{version}"), Path("/usr/bin/python3")]
    windows = setup.base_python_candidates(Path("C:/OSGeo4W/apps/Python312"), "win32")
    assert windows[0] == Path("C:/OSGeo4W/apps/Python312/python.exe")
    assert setup.find_base_python() is not None


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device", "disk is full"),
        ("WARNING: Retrying ... ProxyError('Cannot connect to proxy.', ...)\nERROR: No matching distribution found "
         "for torch==2.13.0", "through the proxy"),
        ("WARNING: Retrying (Retry(total=4...)) after connection broken by 'NewConnectionError(... Failed to "
         "establish a new connection: [Errno -3] Temporary failure in name resolution')'\nERROR: Could not find a "
         "version that satisfies the requirement torch==2.13.0", "No network"),
        ("SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
         "certificate is not trusted"),
        ("pip._vendor.urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool: Read timed out.", "timed out"),
        ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.", "arrived damaged"),
        ("ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/opt/x'",
         "not allowed to write"),
        ("The virtual environment was not created successfully because ensurepip is not available. On "
         "Debian/Ubuntu systems, you need to install the python3-venv package", "python3-venv"),
        ("ERROR: Could not find a version that satisfies the requirement torch==2.13.0 (from versions: none)\n"
         "ERROR: No matching distribution found for torch==2.13.0", "No ready-made build of torch==2.13.0"),
        ("error: subprocess-exited-with-error\n  Failed building wheel for rasterio", "compiled from source"),
        ("ERROR: something nobody has seen before", "pip failed (ERROR: something nobody has seen before)"),
    ],
    ids=["disk", "proxy", "network", "ssl", "timeout", "hash", "permission", "venv", "version", "compile", "other"],
)  # fmt: skip
def test_pip_failures_become_sentences(plugin_package: Any, output: str, expected: str) -> None:
    from cloud_removal.plugin.pip_errors import explain_pip_failure

    sentence = explain_pip_failure(output.splitlines(), Path("/profile/cloud_removal"))
    assert expected in sentence
    assert "Traceback" not in sentence


def test_pip_progress_only_moves_forward(setup: Any) -> None:
    progress = setup.PipProgress()
    values = [progress.feed(line) for line in [
        "Collecting torch==2.13.0", "  Downloading torch-2.13.0.whl (900 MB)", "Collecting numpy==2.4.6",
        "Processing /opt/wheels/rasterio-1.4.4-cp311-cp311-manylinux_2_28_x86_64.whl",
        "Installing collected packages: numpy, torch", "some line", "Successfully installed numpy torch"]]  # fmt: skip
    assert values == sorted(values)
    assert 0 < values[0] < values[2] < values[3] < 0.7 < values[4] == values[5] < values[6] == 1.0


def test_proxy_from_qgis_network_settings(setup: Any) -> None:
    assert setup.proxy_url({"proxyEnabled": "false", "proxyHost": "proxy"}) == ""
    settings = {"proxyEnabled": "true", "proxyHost": "proxy.local", "proxyPort": "3128", "proxyType": "HttpProxy"}
    assert setup.proxy_url(settings) == "http://proxy.local:3128"
    assert setup.proxy_url({**settings, "proxyUser": "ann", "proxyPassword": "pw"}) == "http://ann:pw@proxy.local:3128"
    assert setup.proxy_url({**settings, "proxyType": "Socks5Proxy"}).startswith("socks5://")


def fake_step(setup: Any, kind: str, script: str, weight: float = 1) -> Any:
    return setup.Step(f"fake {kind}", sys.executable, ("-c", script), weight, kind)


def test_the_task_relays_lines_and_progress_and_stops_at_the_first_failure(setup: Any, tmp_path: Path) -> None:
    prepared = []
    steps = [
        fake_step(setup, "pip", "print('Collecting torch==2.13.0'); print('Successfully installed torch')"),
        fake_step(setup, "pip", "import sys; print('ERROR: [Errno 28] No space left on device'); sys.exit(1)"),
        fake_step(setup, "pip", "print('never run')"),
    ]
    task = setup.SetupTask(steps, tmp_path, prepare=lambda: prepared.append(True))
    lines: list[str] = []
    progress: list[float] = []
    task.line.connect(lines.append)
    task.progressChanged.connect(progress.append)
    assert task.run() is False  # QgsTask.run is the body the task manager calls in a thread
    assert prepared == [True]
    assert lines[:3] == ["▶ fake pip", "Collecting torch==2.13.0", "Successfully installed torch"]
    assert "never run" not in lines
    assert task.error.startswith("The disk is full.")
    assert progress and max(progress) <= 100 and progress == sorted(progress)


def test_an_optional_step_that_fails_is_logged_and_the_set_up_goes_on(setup: Any, tmp_path: Path) -> None:
    import dataclasses

    unreachable = "import sys; print('ERROR: Could not find a version that satisfies the requirement'); sys.exit(1)"
    steps = [dataclasses.replace(fake_step(setup, "pip", unreachable), optional=True),
             fake_step(setup, "pip", "print('Successfully installed torch')")]  # fmt: skip
    task = setup.SetupTask(steps, tmp_path)
    lines: list[str] = []
    task.line.connect(lines.append)
    assert task.run() is True, task.error
    assert any(line.startswith("⚠ fake pip did not work") for line in lines)
    assert lines[-1] == "Successfully installed torch" and task.error == ""


def test_the_task_check_step_reads_the_model_list(setup: Any, tmp_path: Path) -> None:
    steps = [fake_step(setup, "check", 'print(\'[{"name": "dbcr-lite", "kind": "weights"}]\')')]
    task = setup.SetupTask(steps, tmp_path)
    lines: list[str] = []
    task.line.connect(lines.append)
    assert task.run() is True, task.error
    assert lines[-1] == "Backend ready, 1 trained model."
    broken = setup.SetupTask([fake_step(setup, "check", "import sys; print(\"No module named 'torch'\"); "
                                                        "sys.exit(1)")], tmp_path)  # fmt: skip
    assert broken.run() is False
    assert broken.error == "The new backend does not work: it lacks the package torch; repair it with “Set up…”."


def test_the_dialog_runs_the_set_up_with_a_visible_log_and_adopts_the_new_python(
    plugin_package: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import time

    from cloud_removal.plugin import backend_setup, setup_dialog
    from cloud_removal.processing_provider import settings
    from qgis.core import QgsApplication

    venv = tmp_path / "profile" / "venv"
    monkeypatch.delenv(settings.ENV_BACKEND_PYTHON, raising=False)
    monkeypatch.setattr(settings, "managed_venv_dir", lambda: venv)
    monkeypatch.setattr(setup_dialog, "find_base_python", lambda: Path(sys.executable))
    pip = "print('Collecting torch==2.13.0'); print('Installing collected packages: torch')"
    steps = [backend_setup.Step("Install", sys.executable, ("-c", pip), 1, "pip"),
             backend_setup.Step("Check", sys.executable, ("-c", "print('[]')"), 1, "check")]  # fmt: skip
    monkeypatch.setattr(setup_dialog, "build_steps", lambda *args, **kwargs: steps)
    dialog = setup_dialog.SetupDialog(gpus=[])
    changed: list[bool] = []
    dialog.backend_changed.connect(lambda: changed.append(True))
    assert str(venv) in dialog.findChildren(setup_dialog.QLabel)[0].text()
    try:
        dialog.start()
        assert dialog.close_button.text() == "Cancel"
        deadline = time.monotonic() + 20
        while dialog.task is not None and time.monotonic() < deadline:
            QgsApplication.processEvents()
            time.sleep(0.02)
        log = dialog.log.toPlainText()
        assert "▶ Install\nCollecting torch==2.13.0\nInstalling collected packages: torch" in log
        assert "The backend is ready" in dialog.status.text()
        assert dialog.progress.value() == 100 and changed == [True]
        assert settings.backend_python() == settings.venv_python(venv)
        assert (venv.parent / "requirements-selected.txt").read_text().startswith("#")
    finally:
        settings.set_backend_python("")
        dialog.deleteLater()
