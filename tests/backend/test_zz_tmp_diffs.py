import torch, pytest
from tests.backend.test_runtime import restorer, models_by_method
@pytest.mark.parametrize("algorithm", ["dbcr", "diffcr", "de"])
def test_print(algorithm, tiny_model, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUD_REMOVAL_CACHE", str(tmp_path))
    model = models_by_method(tiny_model, tiny_models)[algorithm]
    a, card = restorer(algorithm, model, "torch", tmp_path)
    b, _ = restorer(algorithm, model, "onnxruntime", tmp_path)
    d = 2 if algorithm == "diffcr" else 1
    o = torch.rand(2, d*len(card.optical_bands), 32, 32)*0.5
    s = torch.rand(2, len(card.sar_bands), 32, 32) if card.sar_bands else None
    x, y = a(o, s, [(0,0),(0,24)]), b(o, s, [(0,0),(0,24)])
    print(algorithm, float((x-y).abs().max()), float(x.std()))
