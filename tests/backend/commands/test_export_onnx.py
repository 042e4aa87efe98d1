"""``python -m backend export-onnx``: the graph with its card, DE's reference beside it, the runtime's cache."""

from pathlib import Path

import pytest

from backend import runtime
from backend.cli import main
from backend.protocol import EXIT_OK, EXIT_USER_ERROR
from models.card import file_sha256
from models.onnx_step import read_onnx_card


def test_writes_the_graph_with_its_card(tmp_path, tiny_model, capsys):
    out = tmp_path / "dbcr.onnx"
    assert main(["export-onnx", tiny_model, "--tile", "48", "--out", str(out)]) == EXIT_OK
    assert capsys.readouterr().out.split() == [str(out)]
    card = read_onnx_card(out)
    assert card is not None and card.name == "tiny" and card.algorithm == "dbcr"


def test_de_exports_its_reference_too(tmp_path, tiny_models, capsys):
    out = tmp_path / "de.onnx"
    assert main(["export-onnx", tiny_models["tiny-de"], "--out", str(out)]) == EXIT_OK
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert written == [out, tmp_path / "de.reference.onnx"]
    assert [read_onnx_card(path).algorithm for path in written] == ["de", "de-reference"]


def test_without_out_it_fills_the_runtime_cache(tmp_path, tiny_models, monkeypatch, capsys):
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "cache"))
    model = tiny_models["tiny-diffcr"]
    assert main(["export-onnx", model]) == EXIT_OK
    expected = tmp_path / "cache" / "onnx" / f"{file_sha256(model)}-32.onnx"
    assert capsys.readouterr().out.split() == [str(expected)] and expected.is_file()


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--tile", "40"], "Tile size must be a multiple of 16 between 32 and 4096, not 40"),
        (["--out", "x.txt"], "must be an ONNX file ending in .onnx"),
    ],
)
def test_user_errors_are_sentences(tiny_model, args, sentence, capsys):
    assert main(["export-onnx", tiny_model, *args]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err


def test_an_unknown_model_is_a_sentence(capsys):
    assert main(["export-onnx", "no-such-model"]) == EXIT_USER_ERROR
    assert "No model named 'no-such-model'" in capsys.readouterr().err
