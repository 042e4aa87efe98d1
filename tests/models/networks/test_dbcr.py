import pytest
import torch

from models.networks.dbcr import LITE, PAPER, DBCRConfig, DBCRNet

TINY = DBCRConfig(widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 2))


def test_paper_config_matches_the_papers_parameter_count():
    params = sum(p.numel() for p in DBCRNet(PAPER).parameters())
    assert abs(params - 18.06e6) / 18.06e6 < 0.10


def test_lite_is_much_smaller_than_paper():
    lite = sum(p.numel() for p in DBCRNet(LITE).parameters())
    assert lite < 0.2 * sum(p.numel() for p in DBCRNet(PAPER).parameters())


@pytest.mark.parametrize("size", [(32, 32), (20, 37)])
def test_output_has_input_shape_for_any_size(size):
    net = DBCRNet(TINY).eval()
    x = torch.rand(2, 13, *size)
    out = net(x, torch.tensor([1000.0, 3.0]), torch.rand(2, 2, *size))
    assert out.shape == x.shape


def test_fresh_network_is_the_identity():
    # zero-initialised block scales and ending: training starts from "return the cloudy image"
    net = DBCRNet(TINY).eval()
    x = torch.rand(1, 13, 32, 32)
    assert torch.equal(net(x, torch.tensor([5.0]), torch.rand(1, 2, 32, 32)), x)


def test_output_depends_on_time_and_sar():
    net = DBCRNet(TINY).eval()
    torch.nn.init.normal_(net.ending.weight, std=0.1)
    for module in net.modules():  # wake up the zero-initialised residual scales
        for name in ("beta", "gamma"):
            if hasattr(module, name):
                torch.nn.init.normal_(getattr(module, name))
    x, sar = torch.rand(1, 13, 32, 32), torch.rand(1, 2, 32, 32)
    base = net(x, torch.tensor([1000.0]), sar)
    assert not torch.allclose(base, net(x, torch.tensor([10.0]), sar))
    assert not torch.allclose(base, net(x, torch.tensor([1000.0]), torch.rand(1, 2, 32, 32)))


def test_config_round_trips_through_json_form():
    assert DBCRConfig.from_dict(PAPER.to_dict()) == PAPER


def test_mismatched_levels_are_rejected():
    with pytest.raises(ValueError, match="one entry per level"):
        DBCRNet(DBCRConfig(widths=(8, 16), enc_blocks=(1,), dec_blocks=(1, 1), heads=(1, 1)))
