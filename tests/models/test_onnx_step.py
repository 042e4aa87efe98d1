"""ONNX export of one denoiser step: torch and ONNX Runtime agree, the card travels in the metadata."""

import pytest
import torch

from models.card import ModelCard
from models.networks.de import DEConfig, DENet
from models.networks.diffcr import DiffCRConfig, DiffCRNet
from models.onnx_step import OnnxModule, export_onnx, export_step, open_session, read_onnx_card


def _randomise(network):
    torch.manual_seed(0)
    for p in network.parameters():  # zero-initialised layers would make the comparison trivial
        p.data.normal_(0, 0.1)
    return network.eval()


def test_diffcr_step(tmp_path):
    config = DiffCRConfig(width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), dates=2, sar_bands=2)
    network = _randomise(DiffCRNet(config))
    card = ModelCard(name="tiny", algorithm="diffcr", config=config.__dict__, tile_size=16)
    path = export_step(network, card, tmp_path / "diffcr.onnx")
    assert read_onnx_card(path).name == "tiny"
    step = OnnxModule(open_session(path, device="cpu", threads=1))
    x_t, gamma, cond = torch.randn(3, 3, 16, 16), torch.rand(3), torch.randn(3, 10, 16, 16)  # batch 3: dynamic
    with torch.no_grad():
        expected = network(x_t, gamma, cond)
    torch.testing.assert_close(step(x_t, gamma, cond), expected, atol=1e-3, rtol=1e-3)


def test_diffcr_step_with_a_prior(tmp_path):
    config = DiffCRConfig(width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), dates=3, prior=True)
    network = _randomise(DiffCRNet(config))
    card = ModelCard(name="p", algorithm="diffcr", config=config.__dict__, tile_size=16, x0_prior="temporal_fill")
    step = OnnxModule(open_session(export_step(network, card, tmp_path / "prior.onnx"), device="cpu", threads=1))
    x_t, gamma, cond = torch.randn(2, 3, 16, 16), torch.rand(2), torch.randn(2, config.cond_total, 16, 16)
    with torch.no_grad():
        expected = network(x_t, gamma, cond)
    torch.testing.assert_close(step(x_t, gamma, cond), expected, atol=1e-3, rtol=1e-3)


def test_de_step_with_integer_timesteps(tmp_path):
    config = DEConfig(model_channels=32, channel_mult=(1, 2), attention_ds=(2,), wa_channels=32, wa_channel_mult=(1, 2))
    network = _randomise(DENet(config))
    card = ModelCard(name="tiny-de", algorithm="de", config=config.__dict__, tile_size=16)
    step = OnnxModule(open_session(export_step(network, card, tmp_path / "de.onnx"), device="cpu", threads=1))
    x_t, cloudy, ref = (torch.randn(2, 3, 16, 16) for _ in range(3))
    t = torch.tensor([3, 900])
    eps, w = step(x_t, t, cloudy, ref)
    with torch.no_grad():
        eps_t, w_t = network(x_t, t, cloudy, ref)
    torch.testing.assert_close(eps, eps_t, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(w, w_t, atol=1e-3, rtol=1e-3)


def test_generic_export_and_cuda_request(tmp_path):
    path = export_onnx(
        torch.nn.Conv2d(2, 2, 3, padding=1),
        (torch.randn(1, 2, 8, 8),),
        tmp_path / "c.onnx",
        input_names=["x"],
        output_names=["y"],
    )
    assert read_onnx_card(path) is None
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(RuntimeError, match="no CUDA provider"):
            open_session(path, device="cuda")
