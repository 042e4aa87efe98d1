"""The RGB cloud detector's network: logits at the input's size, its config round trip, scene context."""

import torch

from models.networks.rgb_cloud import LITE, RgbCloudConfig, RgbCloudNet, build


def test_logits_come_back_at_the_input_size_even_when_it_is_not_a_multiple_of_the_downsampling():
    network = RgbCloudNet(RgbCloudConfig(width=8, dilations=(1, 2)))
    assert network(torch.rand(2, 3, 37, 50)).shape == (2, 1, 37, 50)


def test_the_config_is_rebuilt_from_its_json_form():
    config = RgbCloudConfig(width=8, dilations=(1, 3), downsample=2)
    rebuilt = build({"width": 8, "dilations": [1, 3], "downsample": 2})
    assert rebuilt.config == config and LITE == RgbCloudConfig.from_dict(LITE.to_dict())


def test_a_pixel_s_logit_depends_on_the_rest_of_the_scene():
    torch.manual_seed(0)
    network = RgbCloudNet(RgbCloudConfig(width=8, dilations=(1,))).eval()
    scene = torch.full((1, 3, 64, 64), 0.2)
    brighter_far_away = scene.clone()
    brighter_far_away[..., 48:, 48:] = 0.9  # beyond the convolutions' reach from the top-left corner
    with torch.no_grad():
        corner, changed = network(scene)[..., 0, 0], network(brighter_far_away)[..., 0, 0]
    assert not torch.allclose(corner, changed)
