import pytest
import torch

from backend.device import choose_device, configure_threads, default_threads
from backend.errors import DeviceError


def test_auto_and_cpu():
    assert choose_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_sentence():
    with pytest.raises(DeviceError, match="choose the device 'auto' or 'cpu'") as raised:
        choose_device("cuda")
    assert raised.value.code == "device"


def test_threads():
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        assert default_threads() >= 1
    finally:
        torch.set_num_threads(before)
