"""torch and ONNX Runtime run the same samplers on the same networks: they agree, and the export is cached."""

import io

import numpy as np
import pytest
import rasterio
import torch

from backend import runtime
from backend.job import Job
from backend.protocol import EXIT_OK, EXIT_USER_ERROR, decode_event
from backend.reporter import Reporter
from backend.worker import execute, load_restorer


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(runtime.CACHE_ENV, str(folder))
    return folder / "onnx"


def models_by_method(tiny_model, tiny_models):
    return {"dbcr": tiny_model, "diffcr": tiny_models["tiny-diffcr"], "de": tiny_models["tiny-de"]}


def restorer(algorithm, model, runtime_name, tmp_path):
    job = Job(algorithm, "in.tif", str(tmp_path / "out.tif"), model=model, nfe=3, device="cpu", threads=1,
              runtime=runtime_name)  # fmt: skip
    return load_restorer(job, torch.device("cpu"))


@pytest.mark.parametrize("algorithm", ["dbcr", "diffcr", "de"])
def test_both_runtimes_agree(algorithm, tiny_model, tiny_models, tmp_path, cache):
    model = models_by_method(tiny_model, tiny_models)[algorithm]
    torch_restore, card = restorer(algorithm, model, "torch", tmp_path)
    onnx_restore, _ = restorer(algorithm, model, "onnxruntime", tmp_path)
    generator = torch.Generator().manual_seed(1)
    dates = 2 if algorithm == "diffcr" else 1
    optical = torch.rand(2, dates * len(card.optical_bands), 32, 32, generator=generator) * 0.5
    sar = torch.rand(2, len(card.sar_bands), 32, 32, generator=generator) if card.sar_bands else None
    origins = [(0, 0), (0, 24)]
    expected = torch_restore(optical, sar, origins)
    got = onnx_restore(optical, sar, origins)
    assert got.shape == expected.shape == (2, len(card.optical_bands), 32, 32)
    assert float((got - expected).abs().max()) < 1e-3
    assert float(expected.std()) > 1e-3  # a real comparison, not two constant images
    exported = sorted(path.name for path in cache.glob("*.onnx"))
    assert len(exported) == (2 if algorithm == "de" else 1)  # DE: the noise predictor and the reference network
    assert all(name.endswith("-32.onnx") for name in exported)


def run(job):
    out = io.StringIO()
    code = execute(job, Reporter(events=True, out=out))
    return code, [decode_event(line) for line in out.getvalue().splitlines() if line.strip()]


def test_end_to_end_on_onnxruntime_matches_torch_and_reuses_the_cache(tmp_path, tiny_models, kit, monkeypatch, cache):
    # float32 DN: the outputs are compared without rounding to whole DN.
    optical = kit.write_raster(tmp_path / "s2.tif", kit.s2_dn(13, 40, 48).astype(np.float32))
    sar = kit.write_raster(tmp_path / "s1.tif", kit.s1_db(40, 48))
    outputs = {}
    for name in ("torch", "onnxruntime"):
        job = Job("diffcr", optical, str(tmp_path / f"{name}.tif"), sar=sar, model=tiny_models["tiny-diffcr"], nfe=3,
                  overlap=8, device="cpu", threads=1, runtime=name)  # fmt: skip
        code, events = run(job)
        assert code == EXIT_OK, events[-1].data
        assert events[-1].get("stats")["runtime"] == name
        with rasterio.open(job.output) as out:
            outputs[name] = out.read() / 10000.0
            assert out.tags()["CLOUD_REMOVAL_RUNTIME"] == name
    np.testing.assert_allclose(outputs["onnxruntime"], outputs["torch"], atol=1e-3, rtol=0)
    assert any(event.get("device") == "onnxruntime:cpu" for event in events if event.kind == "started")

    def no_export(*args, **kwargs):
        raise AssertionError("the cached graph was exported again")

    monkeypatch.setattr(runtime, "export_network", no_export)
    code, _ = run(job)
    assert code == EXIT_OK


def test_cuda_on_onnxruntime_without_a_cuda_provider_is_a_device_error(tmp_path, tiny_model, kit):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    optical = kit.write_raster(tmp_path / "s2.tif", kit.s2_dn(13, 32, 32))
    sar = kit.write_raster(tmp_path / "s1.tif", kit.s1_db(32, 32))
    job = Job("dbcr", optical, str(tmp_path / "o.tif"), sar=sar, model=tiny_model, device="cuda", threads=1,
              runtime="onnxruntime")  # fmt: skip
    code, events = run(job)
    assert code == EXIT_USER_ERROR
    assert events[-1].get("code") == "device" and "no CUDA provider" in events[-1].get("message")


def test_an_adapted_network_is_exported_afresh_and_never_cached(tiny_model, tmp_path, cache):
    job = Job("dbcr", "in.tif", str(tmp_path / "out.tif"), model=tiny_model, nfe=1, device="cpu", threads=1,
              runtime="onnxruntime")  # fmt: skip

    def adapt(network, card, reference):
        with torch.no_grad():
            network.ending.weight.add_(0.5)  # stands in for fine-tuning: the weights no longer match the file
        return network

    adapted, _ = load_restorer(job, torch.device("cpu"), adapt)
    assert not list(cache.glob("*.onnx"))  # the adapted graph did not go into the cache
    original, _ = load_restorer(job, torch.device("cpu"))
    optical, sar = torch.rand(1, 13, 32, 32) * 0.3, torch.rand(1, 2, 32, 32)
    assert float((adapted(optical, sar, [(0, 0)]) - original(optical, sar, [(0, 0)])).abs().max()) > 1e-3
