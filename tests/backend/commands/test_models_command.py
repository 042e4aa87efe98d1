import json

from backend.cli import main
from models import registry
from models.registry import ModelInfo

ROWS = [
    ModelInfo("dbcr-lite", "dbcr", "weights", 1_940_000, 2.94, "models/weights/dbcr-lite.safetensors"),
    ModelInfo("dbcr-paper", "dbcr", "config", 16_850_000, 15.4, None),
]


def test_table(monkeypatch, capsys):
    monkeypatch.setattr(registry, "list_models", lambda: ROWS)
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| model | algorithm")
    assert lines[2] == "| dbcr-lite | dbcr | weights | 1.94 M | 2.94 | models/weights/dbcr-lite.safetensors |"
    assert lines[3].endswith("| (config only) |")


def test_json(monkeypatch, capsys):
    monkeypatch.setattr(registry, "list_models", lambda: ROWS)
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[1] == {"name": "dbcr-paper", "algorithm": "dbcr", "kind": "config", "params": 16_850_000,
                       "gmacs_256": 15.4, "path": None}  # fmt: skip
