"""Official checkpoint import: key mapping, config inference, the card, errors, and the CLI command."""

import argparse
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from backend.commands import import_checkpoint as command
from models.card import read_card, read_weights
from models.importers import CheckpointError, build_network, import_checkpoint
from models.networks.de_reference import DEReferenceConfig, DEReferenceNet
from models.networks.diffcr import DiffCRConfig, DiffCRNet

OFFICIAL = Path(__file__).resolve().parents[3] / "shared" / "reference" / "official-checkpoints"


def _official(name):
    if not (OFFICIAL / name).is_file():
        pytest.skip(f"official fixture {name} not available")
    return OFFICIAL / name


def test_palette_pth_with_prefix_and_buffers(tmp_path):
    config = DiffCRConfig(bands=13, sar_bands=2, width=8, enc_blocks=(1, 2), middle_blocks=2, dec_blocks=(2, 1))
    network = DiffCRNet(config)
    state = {f"denoise_fn.{k}": v for k, v in network.state_dict().items()}
    state |= {"gammas": torch.rand(2000), "posterior_mean_coef1": torch.rand(2000)}  # schedule buffers
    src = tmp_path / "300_Network_ema.pth"
    torch.save(state, src)
    card = import_checkpoint("diffcr-official", src, tmp_path / "m.safetensors", name="diffcr-s2")
    assert DiffCRConfig.from_dict(card.config) == config
    assert card.name == "diffcr-s2" and card.algorithm == "diffcr"
    assert card.sar_bands == ("VV", "VH") and len(card.optical_bands) == 13
    assert card.training["recipe"] == "official checkpoint imported from 300_Network_ema.pth"
    assert card.schedule.time_input == "official" and card.default_nfe == 21
    weights, read = read_weights(tmp_path / "m.safetensors")
    assert read == card and "gammas" not in weights
    rebuilt = build_network(card)
    rebuilt.load_state_dict(weights, strict=True)


def test_de_import_infers_the_official_config(tmp_path):
    card = import_checkpoint(
        "de-official", _official("de_official_c32_weights.safetensors"), tmp_path / "de.safetensors", reference="de-ref"
    )
    assert card.config == {
        "bands": 3,
        "model_channels": 32,
        "num_res_blocks": 2,
        "channel_mult": [1, 1, 2, 2, 3],
        "attention_ds": [4, 8],
        "num_heads": 4,
        "use_scale_shift_norm": True,
        "wa_channels": 64,
        "wa_channel_mult": [1, 1, 2],
        "wa_num_heads": 1,
        "wa_scale_shift_norm": False,
    }
    assert card.reference_model == "de-ref" and card.default_nfe == 10
    assert read_card(tmp_path / "de.safetensors").optical_scale == 255.0


def test_reference_import_with_shared_prelu(tmp_path):
    config = DEReferenceConfig(bands=4, n_feat=16, scale_unetfeats=8, scale_orsnetfeats=8, num_cab=2, reduction=4)
    src = tmp_path / "mnmy14.pth"
    torch.save(DEReferenceNet(config).state_dict(), src)
    card = import_checkpoint("de-reference-official", src, tmp_path / "ref.safetensors")
    assert DEReferenceConfig.from_dict(card.config) == config
    weights, _ = read_weights(tmp_path / "ref.safetensors")
    build_network(card).load_state_dict(weights, strict=True)


def test_wrong_kind_is_a_sentence(tmp_path):
    src = _official("diffcr_official_w8_weights.safetensors")
    with pytest.raises(CheckpointError, match="is not a de-official checkpoint"):
        import_checkpoint("de-official", src, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="unknown checkpoint kind"):
        import_checkpoint("unet", src, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_imported_weights_reproduce_the_source(tmp_path):
    src = _official("diffcr_official_w8_weights.safetensors")
    import_checkpoint("diffcr-official", src, tmp_path / "d.safetensors")
    ours, _ = read_weights(tmp_path / "d.safetensors")
    theirs = load_file(str(src))
    assert {f"denoise_fn.{k}" for k in ours} == set(theirs)
    for key, value in ours.items():
        assert torch.equal(value, theirs[f"denoise_fn.{key}"])


def test_cli_command(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "d.safetensors"
    args = parser.parse_args(
        ["import-checkpoint", "diffcr-official", str(_official("diffcr_official_w8_weights.safetensors")), str(out)]
    )
    assert args.handler(args) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    args = parser.parse_args(["import-checkpoint", "de-official", str(tmp_path / "missing.pth"), str(out)])
    assert args.handler(args) == 2
    assert "does not exist" in capsys.readouterr().err
