import pytest
import torch

from models.networks import dbcr
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


def _awake(net: DBCRNet) -> DBCRNet:
    torch.manual_seed(0)
    torch.nn.init.normal_(net.ending.weight, std=0.1)
    for module in net.modules():
        for name in ("beta", "gamma"):
            if hasattr(module, name):
                torch.nn.init.normal_(getattr(module, name))
    return net.eval()


def test_the_condition_branch_takes_the_cloudy_image_after_the_radar():
    config = DBCRConfig(widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 2), cloudy_channels=14)
    net = DBCRNet(config).eval()
    x = torch.rand(1, 13, 32, 32)
    assert torch.equal(net(x, torch.tensor([5.0]), torch.rand(1, 16, 32, 32)), x)  # still the identity when fresh
    with pytest.raises(RuntimeError):
        net(x, torch.tensor([5.0]), torch.rand(1, 2, 32, 32))


def test_a_tile_normalised_network_follows_the_tiles_brightness(monkeypatch):
    monkeypatch.setattr(dbcr, "TILE_SPREAD_FLOOR", 0.0)  # the floor only matters on flat tiles
    config = DBCRConfig(
        widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 2), cloudy_channels=14, tile_normalise=True
    )
    net = _awake(DBCRNet(config))
    x, t = torch.rand(1, 13, 32, 32) * 0.2, torch.tensor([1000.0])
    condition = torch.cat([torch.rand(1, 2, 32, 32), x + 0.05, torch.zeros(1, 1, 32, 32)], dim=1)
    out = net(x, t, condition)
    assert not torch.allclose(out, x, atol=1e-3)
    # The same ground twice as bright and 0.1 brighter: the same answer, twice as bright and 0.1 brighter.
    brighter = condition.clone()
    brighter[:, 2:15] = condition[:, 2:15] * 2 + 0.1
    assert torch.allclose(net(x * 2 + 0.1, t, brighter), out * 2 + 0.1, atol=1e-4)
