"""DE training on RICE-like pairs: the split, crops, the official loss, resumable runs and loadable cards."""

import json
import random

import numpy as np
import torch
from PIL import Image

from models.networks.de import DEConfig, DENet
from models.networks.de_reference import DEReferenceConfig, DEReferenceNet
from models.registry import load_model
from models.restorers import de_restorer
from models.sampling.noise_schedules import adm_linear_betas, alphas_cumprod
from models.training.loop_utils import save_model
from models.training.rice_pairs import (
    Pairs,
    crop_sizes,
    load_pairs,
    load_rice_sets,
    quarters,
    sample_pairs,
    split_pairs,
)
from models.training.train_de import (
    DESettings,
    ReferenceSettings,
    de_card,
    de_loss,
    reference_card,
    train_de,
    train_reference,
)

TINY_REF = DEReferenceConfig(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
TINY_DE = DEConfig(model_channels=32, channel_mult=(1, 2), attention_ds=(), wa_channels=32, wa_channel_mult=(1, 2))
REF_SETTINGS = ReferenceSettings(steps=2, batch=2, crop=32, min_crop=16, eval_every=1)
DE_SETTINGS = DESettings(steps=2, batch=2, crop=32, min_crop=16, eval_every=1, val_nfe=2, val_crop=32)


def _rice(root, count=20, size=48):
    """A RICE2-like folder: ``<id>_real_A.png`` (cloudy) and ``<id>_real_B.png`` (clear), ids 1..count."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for index in range(1, count + 1):
        clear = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
        cloudy = np.maximum(clear, rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
        Image.fromarray(cloudy).save(root / f"{index}_real_A.png")
        Image.fromarray(clear).save(root / f"{index}_real_B.png")
    return root


def test_every_tenth_pair_in_id_order_is_held_out(tmp_path):
    train, validation = split_pairs(load_pairs(_rice(tmp_path / "rice2")))
    assert validation.names == ("10", "20") and len(train) == 18 and not set(train.names) & {"10", "20"}
    assert train.cloudy.dtype == np.uint8 and train.cloudy.shape[1:] == (3, 48, 48)


def test_crops_share_one_size_per_batch_and_stay_aligned(tmp_path):
    loaded = load_pairs(_rice(tmp_path / "rice2", count=2))
    pairs = Pairs(loaded.clear, loaded.clear, loaded.names)  # cloudy == clear: any misalignment would show
    cloudy, clear = sample_pairs(pairs, 4, crop_sizes(16, 32), random.Random(0))
    assert cloudy.shape[-1] in (16, 32) and cloudy.shape == clear.shape == (4, 3, *cloudy.shape[-2:])
    assert torch.equal(cloudy, clear) and 0 <= float(clear.min()) and float(clear.max()) <= 1
    assert crop_sizes(64, 128) == [64, 80, 96, 112, 128] and crop_sizes(64, 32) == [32]


def test_de_loss_trains_the_wa_net_through_the_l1_term_only():
    torch.manual_seed(0)
    network = DENet(TINY_DE)
    reference = DEReferenceNet(TINY_REF).eval().requires_grad_(False)
    cloudy, clear = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    loss = de_loss(network, reference, alphas_cumprod(adm_linear_betas(1000)), cloudy, clear)
    loss.backward()
    assert network.wc.out[2].weight.grad is not None and network.wc.out[2].weight.grad.abs().sum() > 0
    assert network.out[2].weight.grad is not None  # ε-MSE reaches the noise predictor


def test_512_pairs_train_as_quarters_and_validate_whole(tmp_path):
    _rice(tmp_path / "rice2")
    large = load_pairs(_rice(tmp_path / "rice2-512", count=10, size=96))
    train, validation = load_rice_sets(tmp_path, train_size=48)
    assert set(validation) == {"rice2", "rice2-512"} and validation["rice2-512"].names == ("10",)
    assert validation["rice2-512"].cloudy.shape[-2:] == (96, 96)  # validated whole
    assert len(train) == 18 + 4 * 9 and train.cloudy.shape[1:] == (3, 48, 48)
    assert train.names[18:20] == ("1_0_0", "1_0_48") and not {"10", "10_0_0"} & set(train.names)
    assert np.array_equal(train.clear[18 + 3], large.clear[0][:, 48:, 48:])
    assert quarters(validation["rice2"], 48) is validation["rice2"]  # already that size


def test_reference_then_de_train_resume_and_load(tmp_path):
    train, held = split_pairs(load_pairs(_rice(tmp_path / "rice2")))
    validation = {"rice2": held}
    logs: list[str] = []
    reference, metrics, _ = train_reference(TINY_REF, REF_SETTINGS, train, validation, tmp_path / "ref", logs.append)
    assert len(logs) == 3 and {"psnr_output", "psnr_cloudy", "score", "step"} <= set(metrics)
    assert [json.loads(line)["step"] for line in logs] == [0, 1, 2]
    scores = [json.loads(line)["score"] for line in logs]
    assert metrics["step"] == scores.index(max(scores)) and metrics["score"] == max(scores)
    ref_path = tmp_path / "ref.safetensors"
    save_model(ref_path, reference, reference_card("ref", TINY_REF, REF_SETTINGS, len(train), metrics, 1.0))
    loaded_ref, ref_card = load_model(str(ref_path))
    assert ref_card.algorithm == "de-reference" and ref_card.optical_scale == 255.0

    logs.clear()
    network, metrics, _ = train_de(
        TINY_DE, DE_SETTINGS, loaded_ref, str(ref_path), train, validation, tmp_path / "de", logs.append
    )
    assert len(logs) == 3 and {"psnr_output", "psnr_reference", "psnr_cloudy"} <= set(metrics)
    resumed: list[str] = []
    _, again, _ = train_de(
        TINY_DE, DE_SETTINGS, loaded_ref, str(ref_path), train, validation, tmp_path / "de", resumed.append
    )
    assert resumed == [] and again == metrics
    path = tmp_path / "de.safetensors"
    save_model(path, network, de_card("de", TINY_DE, DE_SETTINGS, str(ref_path), len(train), metrics, 1.0))
    loaded, card = load_model(str(path))
    assert card.reference_model == str(ref_path) and card.training["recipe"]["steps"] == 2
    out = de_restorer(loaded, card, nfe=2)(torch.rand(1, 3, 16, 16), None, [(0, 0)])  # loads the reference by name
    assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()


def test_the_command_trains_the_reference_then_de(tmp_path, capsys):
    from backend.cli import main

    _rice(tmp_path / "data" / "rice2")
    common = ["--data-root", str(tmp_path / "data"), "--steps", "1", "--batch", "1", "--crop", "32", "--threads", "1"]
    ref = tmp_path / "ref.safetensors"
    assert main(["train", "de-reference", *common, "--run-dir", str(tmp_path / "r"), "--out", str(ref)]) == 0
    out = tmp_path / "de.safetensors"
    de_args = ["train", "de", "--reference", str(ref), "--run-dir", str(tmp_path / "d"), "--out", str(out), *common]
    assert main(de_args) == 0
    assert main([*de_args, "--export-only"]) == 0
    _, card = load_model(str(out))
    assert card.reference_model == str(ref) and card.training["recipe"]["steps"] == 1
    assert "psnr_output" in next(iter(card.metrics.values()))
    missing = ["train", "de", "--reference", str(tmp_path / "none.safetensors"), "--run-dir", str(tmp_path / "m")]
    missing += common
    assert main(missing) == 2 and "Train it first" in capsys.readouterr().err
