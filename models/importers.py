"""Import the authors' DiffCR and DE checkpoints: map keys, infer the config from the shapes, write a carded file.

``import_checkpoint(kind, src, out_path)`` reads a ``.pth``/``.pt`` (``torch.load(weights_only=True)``, so no
pickled code runs) or a ``.safetensors`` file, checks that our network loads every tensor (strict), and writes our
safetensors format with a model card, so the plugin never needs the authors' code or the user's configuration.

- ``diffcr-official``: Palette's ``<epoch>_Network[_ema].pth``: strip ``denoise_fn.``, drop the schedule buffers.
- ``de-official``: ADM's ``ema_0.9999_<step>.pt`` (noise predictor and WA net ``wc.``): keys unchanged.
- ``de-reference-official``: DE's MemoryNet weights (``mn1.pth``, ``mnmy14.pth``…): keys unchanged.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from models.card import S1_BANDS, S2_L1C_BANDS, ModelCard, file_sha256, save_weights
from models.networks import de, de_reference, diffcr
from models.sampling.schedule_configs import W_MIN, DESchedule, DiffCRSchedule, Thresholding

KINDS = ("diffcr-official", "de-official", "de-reference-official")
BUILDERS: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {
    "diffcr": diffcr.build,
    "de": de.build,
    "de-reference": de_reference.build,
}
# Band names by count for the authors' data: Sen2_MTC and RICE are RGB, CUHK-CR is RGB + NIR, SEN12MS-CR is L1C.
_BANDS_BY_COUNT = {3: ("B4", "B3", "B2"), 4: ("B4", "B3", "B2", "B8"), 13: S2_L1C_BANDS}


class CheckpointError(ValueError):
    """The file is not a checkpoint of the kind asked for; the message says what to do."""


def read_state_dict(src: str | Path) -> dict[str, torch.Tensor]:
    """Read the tensors of a checkpoint, unwrapping common containers and DataParallel's ``module.`` prefix."""
    path = Path(src)
    if path.suffix == ".safetensors":
        raw: Any = load_file(str(path))
    else:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "params", "network"):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path.name} holds no state dict (found {type(raw).__name__})")
    return {k.removeprefix("module."): v for k, v in raw.items() if isinstance(v, torch.Tensor)}


def _indices(state: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    """Sorted distinct integers i of keys ``<prefix><i>.…``."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for key in state if (m := pattern.match(key))})


def _shape(state: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"missing tensor {key!r}")
    return tuple(state[key].shape)


def infer_diffcr_config(state: Mapping[str, torch.Tensor], dates: int = 3) -> diffcr.DiffCRConfig:
    """DiffCR config from unprefixed weights; ``dates`` cannot be seen in them (the encoder is shared)."""
    width, bands = _shape(state, "intro.weight")[:2]
    levels = _indices(state, "encoders.")
    return diffcr.DiffCRConfig(
        bands=bands,
        dates=dates,
        sar_bands=_shape(state, "cond_intro.weight")[1] - bands,
        width=width,
        enc_blocks=tuple(len(_indices(state, f"encoders.{i}.")) for i in levels),
        middle_blocks=len(_indices(state, "middle_blks.")),
        dec_blocks=tuple(len(_indices(state, f"decoders.{i}.")) for i in _indices(state, "decoders.")),
        emb_dim=_shape(state, "map.0.weight")[1],
        time_dim=_shape(state, "map.0.weight")[0],
    )


def _infer_adm(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, Any]:
    """Channels, blocks per level, multipliers, attention rates and FiLM use of an ADM U-Net under ``prefix``."""
    channels = _shape(state, f"{prefix}time_embed.0.weight")[1]
    blocks: list[int] = [0]
    mult: list[int] = []
    attention: set[int] = set()
    scale_shift = False
    for idx in _indices(state, f"{prefix}input_blocks.")[1:]:
        block = f"{prefix}input_blocks.{idx}."
        if f"{block}0.op.weight" in state:  # a downsample starts the next level
            blocks.append(0)
            continue
        out = _shape(state, f"{block}0.in_layers.2.weight")[0]
        if len(mult) < len(blocks):
            mult.append(out // channels)
        blocks[-1] += 1
        attention |= {2 ** (len(blocks) - 1)} if f"{block}1.qkv.weight" in state else set()
        scale_shift = _shape(state, f"{block}0.emb_layers.1.weight")[0] == 2 * out
    if len(set(blocks)) != 1:
        raise CheckpointError(f"uneven residual blocks per level {blocks}; not an ADM U-Net")
    return {
        "channels": channels,
        "num_res_blocks": blocks[0],
        "mult": tuple(mult),
        "attention": tuple(sorted(attention)),
        "scale_shift": scale_shift,
    }


def infer_de_config(state: Mapping[str, torch.Tensor]) -> de.DEConfig:
    """DE config from the official weights; attention heads are not visible in them, so the official values stand."""
    cnp, wa = _infer_adm(state, ""), _infer_adm(state, "wc.")
    # One attention_ds serves both nets (as in the official code); the shallower WA just never reaches the deepest.
    wa_reach = {d for d in cnp["attention"] if d < 2 ** len(wa["mult"])}
    if wa["num_res_blocks"] != cnp["num_res_blocks"] or set(wa["attention"]) != wa_reach:
        raise CheckpointError("the WA net's blocks or attention differ from the noise predictor's; not DE's layout")
    return de.DEConfig(
        bands=_shape(state, "out.2.weight")[0],
        model_channels=cnp["channels"],
        num_res_blocks=cnp["num_res_blocks"],
        channel_mult=cnp["mult"],
        attention_ds=cnp["attention"],
        use_scale_shift_norm=cnp["scale_shift"],
        wa_channels=wa["channels"],
        wa_channel_mult=wa["mult"],
        wa_scale_shift_norm=wa["scale_shift"],
    )


def infer_reference_config(state: Mapping[str, torch.Tensor]) -> de_reference.DEReferenceConfig:
    """MemoryNet/MPRNet config from its weights."""
    n_feat, bands = _shape(state, "shallow_feat1.0.weight")[:2]
    return de_reference.DEReferenceConfig(
        bands=bands,
        n_feat=n_feat,
        scale_unetfeats=_shape(state, "stage1_encoder.down12.down.1.weight")[0] - n_feat,
        scale_orsnetfeats=_shape(state, "concat23.weight")[0] - n_feat,
        num_cab=len(_indices(state, "stage3_orsnet.orb1.body.")) - 1,
        reduction=n_feat // _shape(state, "shallow_feat1.1.CA.conv_du.0.weight")[0],
    )


def _card_fields(kind: str, config: Any, source: Path, reference: str | None) -> dict[str, Any]:
    """Card fields that depend on the method (bands, scale, schedule, sampler defaults)."""
    bands = config.bands
    optical = _BANDS_BY_COUNT.get(bands, tuple(f"band{i + 1}" for i in range(bands)))
    if kind == "diffcr-official":
        return {
            "algorithm": "diffcr",
            "optical_bands": optical,
            "sar_bands": S1_BANDS if config.sar_bands == 2 else (),
            "optical_scale": 10000.0,
            "default_nfe": 21,
            # The authors' test script: their time input and dynamic thresholding.
            "schedule": DiffCRSchedule("sigmoid", 1000, time_input="official", thresholding=Thresholding(0.995, 1.0)),
            "description": f"DiffCR (TGRS 2024), official weights from {source.name}; "
            f"{config.dates} cloudy dates, reflectance r fed as 2r − 1.",
        }
    eight_bit = {"optical_bands": optical, "sar_bands": (), "optical_scale": 255.0}
    if kind == "de-official":
        return {
            **eight_bit,
            "algorithm": "de",
            "default_nfe": 10,
            "schedule": DESchedule("adm-linear", 1000, W_MIN),
            "reference_model": reference,
            "description": f"DE (TGRS 2024) noise predictor and WA net, official weights from "
            f"{source.name}; needs the matching reference network (de-reference-official).",
        }
    return {
        **eight_bit,
        "algorithm": "de-reference",
        "default_nfe": 1,
        "description": f"DE's reference network (MemoryNet/MPRNet layout), official weights from {source.name}; "
        "its forward follows MPRNet and is not verified against the authors' outputs.",
    }


def import_checkpoint(
    kind: str,
    src: str | Path,
    out_path: str | Path,
    name: str | None = None,
    *,
    dates: int = 3,
    reference: str | None = None,
) -> ModelCard:
    """Convert an official checkpoint into a carded safetensors file.

    Args:
        kind: ``diffcr-official``, ``de-official`` or ``de-reference-official``.
        src: the authors' ``.pth``/``.pt`` or a ``.safetensors`` with their key names.
        out_path: where to write our ``.safetensors`` (weights + card).
        name: the model's name in the card (default: the source file's stem).
        dates: DiffCR only: cloudy dates per sample (the official code uses 3; weights do not show it).
        reference: DE only: name or path of the imported reference network (``de-reference-official``) that
            the DE restorer loads; can be left out and set later.

    Returns:
        The card written with the weights.

    Raises:
        CheckpointError: if the file does not match the kind (the message names the problem).
    """
    if kind not in KINDS:
        raise CheckpointError(f"unknown checkpoint kind {kind!r}; expected one of {', '.join(KINDS)}")
    source = Path(src)
    state = read_state_dict(source)
    if kind == "diffcr-official":
        if any(k.startswith("denoise_fn.") for k in state):  # Palette wrapper: keep the net, drop the buffers
            state = {k.removeprefix("denoise_fn."): v for k, v in state.items() if k.startswith("denoise_fn.")}
    try:
        config: Any = {
            "diffcr-official": lambda: infer_diffcr_config(state, dates),
            "de-official": lambda: infer_de_config(state),
            "de-reference-official": lambda: infer_reference_config(state),
        }[kind]()
        fields = _card_fields(kind, config, source, reference)
        network = BUILDERS[fields["algorithm"]](dataclasses.asdict(config))
        network.load_state_dict(state, strict=True)
    except (CheckpointError, RuntimeError) as error:
        raise CheckpointError(f"{source.name} is not a {kind} checkpoint: {error}") from error
    card = ModelCard(
        name=name or source.stem,
        config=dataclasses.asdict(config),
        tile_size=256,
        training={
            "recipe": f"official checkpoint imported from {source.name}",
            "importer": kind,
            "source_sha256": file_sha256(source),
        },
        **fields,
    )
    # Clone: MPRNet shares one PReLU across blocks, and safetensors refuses tensors that share memory.
    save_weights(out_path, {k: v.detach().clone() for k, v in network.state_dict().items()}, card)
    return ModelCard.from_json(card.to_json())  # exactly what a reader of the file gets (tuples become lists)


def build_network(card: ModelCard) -> nn.Module:
    """Rebuild the (untrained) network a card describes, ready for ``load_state_dict``.

    Raises:
        CheckpointError: for an algorithm this module does not build.
    """
    if card.algorithm not in BUILDERS:
        raise CheckpointError(f"no network builder for algorithm {card.algorithm!r}")
    return BUILDERS[card.algorithm](card.config)
