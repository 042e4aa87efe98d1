"""What the panel knows about this computer and the models: GPU, backend state (and its cache), model cards."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from qgis.PyQt.QtCore import QEventLoop, QTimer
from qgis_support import FAKE_BACKEND

CARD = {
    "name": "dbcr-test", "algorithm": "dbcr", "config": {"width": 8}, "optical_bands": ["B1", "B2", "B3"],
    "sar_bands": ["VV", "VH"], "tile_size": 256, "default_nfe": 1,
    "training": {"data": "SEN12MS-CR chips", "steps": 2400},
    "metrics": {"psnr": 27.123456, "ssim": 0.81, "measured_on": "4 validation chips"},
    "description": "A test model.",
}  # fmt: skip


def write_safetensors(path: Path, card: dict[str, Any] | None) -> Path:
    """A minimal safetensors file: one float32 tensor, and the card in the header's metadata."""
    header: dict[str, Any] = {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    if card is not None:
        header["__metadata__"] = {"model_card": json.dumps(card)}
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"\0\0\0\0")
    return path


@pytest.fixture
def environment(plugin_package: Any) -> Any:
    from cloud_removal.plugin import environment

    return environment


@pytest.fixture
def cards(plugin_package: Any) -> Any:
    from cloud_removal.plugin import model_cards

    return model_cards


def test_nvidia_smi_output(environment: Any) -> None:
    gpus = environment.parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559 MiB\nNVIDIA A10, 23028 MiB\n\n")
    assert [gpu.describe() for gpu in gpus] == ["NVIDIA H100 80GB HBM3 (80 GB)", "NVIDIA A10 (22 GB)"]
    assert environment.parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate") == []
    assert environment.describe_device([]).startswith("No NVIDIA GPU found: runs on the CPU")
    assert environment.describe_device(gpus[:1]) == "GPU: NVIDIA H100 80GB HBM3 (80 GB)"


def test_backend_states_in_words(environment: Any) -> None:
    found = environment.interpret_check("/p", 0, '(note)\n[{"name": "dbcr-lite", "kind": "weights"}]', "")
    assert found.kind == "found" and found.describe() == "Backend ready, 1 trained model."
    empty = environment.interpret_check("/p", 0, "[]", "")
    assert empty.describe() == "Backend ready; no trained model is installed yet."
    broken = environment.interpret_check("/p", 1, "", "Traceback ...\nModuleNotFoundError: No module named 'rasterio'")
    assert broken.describe() == "Backend broken: it lacks the package rasterio; repair it with “Set up…”."
    odd = environment.interpret_check("/p", 1, "", "Segmentation fault")
    assert odd.describe() == "Backend broken: the self-check failed (Segmentation fault)."


def wait_for_check(check: Any, python: Path) -> Any:
    states: list[Any] = []
    state = check.start(python, use_cache=False)
    if state is not None:
        return state
    loop = QEventLoop()
    check.done.connect(lambda result: (states.append(result), loop.quit()))
    QTimer.singleShot(20_000, loop.quit)
    loop.exec()
    return states[0] if states else None


def test_backend_check_runs_the_backend_and_caches_its_models(
    environment: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = tmp_path / "models.json"
    models.write_text(json.dumps([{"name": "dbcr-lite", "algorithm": "dbcr", "kind": "weights", "path": "/w"}]))
    monkeypatch.setenv("FAKE_BACKEND_MODELS", str(models))
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "ok")
    monkeypatch.setattr(environment, "profile_dir", lambda: tmp_path / "profile")
    check = environment.BackendCheck()
    state = wait_for_check(check, FAKE_BACKEND)
    assert state is not None and state.kind == "found", state
    assert [model["name"] for model in state.models] == ["dbcr-lite"]
    cached = environment.cached_state(FAKE_BACKEND)
    assert cached is not None and cached.models == state.models  # the next panel opens without running it
    monkeypatch.setenv("FAKE_BACKEND_SCENARIO", "missing_module")
    assert wait_for_check(check, FAKE_BACKEND).kind == "broken"
    missing = check.start(tmp_path / "nowhere" / "python")
    assert missing.kind == "missing" and "there is no Python at" in missing.describe()


def test_card_from_a_safetensors_header(cards: Any, tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", CARD)
    assert cards.read_card(path) == CARD
    html = cards.card_html(CARD, {"params": 1935061, "gmacs_256": 2.94, "kind": "weights"})
    for text in ("DB-CR", "B1, B2, B3", "VV, VH", "256 px", "1.94 M parameters, 2.9 GMACs", "SEN12MS-CR chips",
                 "psnr: 27.12", "A test model."):  # fmt: skip
        assert text in html, text


def test_card_spells_out_a_trainers_validation_and_training(cards: Any) -> None:
    trained = {
        "metrics": {"validation_s2_real_pairs_nfe1": {
            "psnr_cloudy": 25.0, "psnr_output": 30.004, "psnr_local_fill_cloud": 26.0, "psnr_output_cloud": 27.5,
            "real_psnr_output_clear": 31.0, "psnr_output_512": 29.0, "step": 300, "odd_value": "x"}},
        "training": {"data": "real pairs", "initialised_from": "dbcr-lite", "recipe": {"steps": 900}, "seconds": 7200},
    }  # fmt: skip
    assert cards.metric_lines(trained["metrics"]) == [
        "S2 real pairs, NFE 1, whole image: output 30.00, cloudy input 25.00 dB",
        "S2 real pairs, NFE 1, under cloud: output 27.50, local fill 26.00 dB",
        "S2 real pairs (512²), NFE 1, whole image: output 29.00 dB",
        "Real pairs, NFE 1, clear pixels: output 31.00 dB",
        "S2 real pairs, NFE 1: kept step 300; odd_value x",
    ]
    assert cards.training_lines(trained["training"]) == [
        "real pairs",
        "Started from dbcr-lite.",
        "900 training steps (2.0 h of CPU).",
    ]
    untrained = cards.training_lines({"data": "chips", "recipe": {"steps": 0}})
    assert untrained[-1].startswith("The shipped weights are the network's start")
    html = cards.card_html(trained)
    assert "<br>" in html and "Validation" in html and "output 30.00" in html


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "has no model card"), (b"hello", "too short"), (b"\xff" * 16, "not a safetensors")],
    ids=["no-card", "short", "garbage"],
)
def test_unreadable_cards_say_why(cards: Any, tmp_path: Path, content: Any, expected: str) -> None:
    path = tmp_path / "m.safetensors"
    if content is None:
        write_safetensors(path, None)
    else:
        path.write_bytes(content)
    with pytest.raises(cards.CardError, match=expected):
        cards.read_card(path)


def test_import_copies_a_model_and_lists_it_by_method(cards: Any, tmp_path: Path) -> None:
    source = write_safetensors(tmp_path / "mine.safetensors", CARD)
    folder = tmp_path / "imported"
    target = cards.import_model(source, folder)
    assert target == folder / "mine.safetensors" and target.read_bytes() == source.read_bytes()
    assert cards.imported_models(folder, "dbcr") == {"mine": target}
    assert cards.imported_models(folder, "de") == {}
    with pytest.raises(cards.CardError):
        cards.import_model(write_safetensors(tmp_path / "bare.safetensors", None), folder)
