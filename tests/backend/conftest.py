"""Tiny generated rasters for every input flavour the backend must handle, and stand-in restorers.

Every raster is written fresh under pytest's tmp_path; sizes are odd on purpose (edge tiles, partial blocks).
Helpers reach the tests through the ``kit`` fixture (not imports), so the suite works in any pytest import mode.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine, from_origin

from models.card import S2_L1C_BANDS, S2_L2A_BANDS, ModelCard

# The backend suite shares two cores with other work: one torch thread keeps it predictable.
torch.set_num_threads(1)

S2_CRS = "EPSG:32631"
S2_TRANSFORM = from_origin(500000.0, 5000000.0, 10.0, 10.0)
HEIGHT, WIDTH = 70, 90


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = S2_CRS,
    transform: Affine = S2_TRANSFORM,
    nodata: float | None = None,
    descriptions: tuple[str, ...] | None = None,
    mask: np.ndarray | None = None,
) -> str:
    """Write (C, H, W) ``data`` as a GeoTIFF and return its path."""
    count, height, width = data.shape
    profile = {"driver": "GTiff", "count": count, "height": height, "width": width, "dtype": data.dtype.name}
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", nodata=nodata, **profile) as dataset:
        dataset.write(data)
        for index, description in enumerate(descriptions or (), start=1):
            dataset.set_band_description(index, description)
        if mask is not None:
            dataset.write_mask(mask.astype(np.uint8) * 255)
    return str(path)


def s2_dn(count: int, height: int = HEIGHT, width: int = WIDTH, seed: int = 0, low: int = 300) -> np.ndarray:
    """Random but smooth-ish Sentinel-2 DNs (uint16), one offset per band so band order is checkable."""
    rng = np.random.default_rng(seed)
    base = rng.integers(low, low + 3000, size=(count, height, width))
    return (base + 100 * np.arange(count)[:, None, None]).astype(np.uint16)


def s1_db(height: int = HEIGHT, width: int = WIDTH, seed: int = 1) -> np.ndarray:
    """Two float32 bands in dB: VV around -10, VH around -17."""
    rng = np.random.default_rng(seed)
    vv = rng.uniform(-14.0, -6.0, size=(height, width))
    vh = rng.uniform(-21.0, -13.0, size=(height, width))
    return np.stack([vv, vh]).astype(np.float32)


@pytest.fixture
def rasters(tmp_path: Path) -> dict[str, str]:
    """Paths of every fixture raster, by flavour."""
    out: dict[str, str] = {}
    out["l1c"] = write_raster(tmp_path / "l1c.tif", s2_dn(13))
    l2a = s2_dn(12, seed=2, low=1200)
    l2a[:, :10, :15] = 0  # a nodata corner, as at the edge of a granule
    out["l2a_nodata"] = write_raster(tmp_path / "l2a.tif", l2a, nodata=0)
    out["wrong_bands"] = write_raster(tmp_path / "rgbn.tif", s2_dn(4))
    db = s1_db()
    out["s1_db"] = write_raster(tmp_path / "s1_db.tif", db)
    out["s1_linear"] = write_raster(tmp_path / "s1_lin.tif", (10.0 ** (db / 10.0)).astype(np.float32))
    out["s1_one_band"] = write_raster(tmp_path / "s1_vv.tif", db[:1])
    # 4326 at ~20 m covering the S2 extent with a margin.
    west, north = 3.0 - 0.001, 45.16
    geo = s1_db(height=60, width=80)
    out["s1_4326"] = write_raster(
        tmp_path / "s1_4326.tif", geo, crs="EPSG:4326", transform=from_origin(west, north, 0.0003, 0.0003)
    )
    out["s1_far"] = write_raster(tmp_path / "s1_far.tif", db, transform=from_origin(700000.0, 5000000.0, 10.0, 10.0))
    out["s1_left_half"] = write_raster(tmp_path / "s1_half.tif", db[:, :, : WIDTH // 2])
    bad = tmp_path / "broken.tif"
    bad.write_text("not a GeoTIFF")
    out["unreadable"] = str(bad)
    return out


def make_card(tile_size: int = 32, bands: tuple[str, ...] = S2_L1C_BANDS, sar: bool = True) -> ModelCard:
    """A model card for a stand-in model."""
    return ModelCard(
        name="stand-in",
        algorithm="dbcr",
        config={},
        optical_bands=bands,
        sar_bands=("VV", "VH") if sar else (),
        tile_size=tile_size,
    )


@pytest.fixture
def card() -> ModelCard:
    """An L1C + SAR card with 32 px tiles."""
    return make_card()


@pytest.fixture
def l2a_card() -> ModelCard:
    """An L2A card (12 bands) with 32 px tiles."""
    return make_card(bands=S2_L2A_BANDS)


Restore = Callable[..., torch.Tensor]


def identity(
    optical: torch.Tensor, sar: torch.Tensor | None, origins: list[tuple[int, int]], mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Returns the optical input unchanged."""
    return optical.clone()


def constant(value: float) -> Restore:
    """A restorer that answers ``value`` reflectance everywhere."""

    def restore(
        optical: torch.Tensor,
        sar: torch.Tensor | None,
        origins: list[tuple[int, int]],
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return torch.full_like(optical, value)

    return restore


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above: write_raster, s2_dn, s1_db, make_card, identity, constant, HEIGHT, WIDTH."""
    return SimpleNamespace(
        write_raster=write_raster,
        s2_dn=s2_dn,
        s1_db=s1_db,
        make_card=make_card,
        identity=identity,
        constant=constant,
        HEIGHT=HEIGHT,
        WIDTH=WIDTH,
        S2_TRANSFORM=S2_TRANSFORM,
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real (untrained, tiny) DB-CR weights file with its card, for end-to-end runs of the command line."""
    from models.card import save_weights
    from models.networks import dbcr
    from models.registry import build_network

    config = dbcr.DBCRConfig(widths=(8, 16), enc_blocks=(1, 1), dec_blocks=(1, 1), heads=(1, 1))
    network = build_network("dbcr", config.to_dict())
    # A fresh DB-CR is the identity (zero ending); a random ending makes it change the image, as a model does.
    torch.nn.init.normal_(network.ending.weight, std=0.05, generator=torch.Generator().manual_seed(0))
    card = ModelCard(name="tiny", algorithm="dbcr", config=config.to_dict(), tile_size=32)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_weights(path, network.state_dict(), card)
    return str(path)


def _randomised(network: torch.nn.Module, std: float = 0.05) -> torch.nn.Module:
    """Random weights everywhere: zero-initialised output layers would make every comparison trivial."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    return network


def _save(path: Path, algorithm: str, config: dict, card: ModelCard) -> str:
    from models.card import save_weights
    from models.registry import build_network

    network = _randomised(build_network(algorithm, config))
    # Clone: MPRNet shares one PReLU across blocks, and safetensors refuses tensors that share memory.
    save_weights(path, {key: value.detach().clone() for key, value in network.state_dict().items()}, card)
    return str(path)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny random DiffCR (2 dates + S1, and optical only) and DE (RGB, with its reference beside it) weights."""
    import dataclasses

    from models.networks.de import DEConfig
    from models.networks.de_reference import DEReferenceConfig
    from models.networks.diffcr import DiffCRConfig

    folder = tmp_path_factory.mktemp("diffusion-models")
    threshold = {"ratio": 0.995, "max_val": 1.0}
    schedule = {"name": "sigmoid", "n_timestep": 1000, "time_input": "gamma", "thresholding": threshold}
    out: dict[str, str] = {}
    small = {"width": 8, "enc_blocks": (1, 1), "dec_blocks": (1, 1), "emb_dim": 16, "time_dim": 32}
    for name, dates, sar in (("tiny-diffcr", 2, 2), ("tiny-diffcr-nosar", 1, 0)):
        config = dataclasses.asdict(DiffCRConfig(bands=13, dates=dates, sar_bands=sar, **small))
        card = ModelCard(
            name=name, algorithm="diffcr", config=config, sar_bands=("VV", "VH") if sar else (), tile_size=32,
            default_nfe=3, schedule=schedule,
        )  # fmt: skip
        out[name] = _save(folder / f"{name}.safetensors", "diffcr", config, card)
    rgb = ("B4", "B3", "B2")
    reference = dataclasses.asdict(DEReferenceConfig(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1))
    reference_card = ModelCard(
        name="tiny-de-ref", algorithm="de-reference", config=reference, optical_bands=rgb, sar_bands=(),
        optical_scale=255.0, tile_size=32,
    )  # fmt: skip
    out["tiny-de-ref"] = _save(folder / "tiny-de-ref.safetensors", "de-reference", reference, reference_card)
    de = dataclasses.asdict(
        DEConfig(model_channels=32, num_res_blocks=1, channel_mult=(1, 2), attention_ds=(2,), wa_channels=32,
                 wa_channel_mult=(1, 2))
    )  # fmt: skip
    # The reference is named by its file's stem: the backend finds it beside the DE weights.
    de_schedule = {"name": "adm-linear", "n_timestep": 1000, "w_min": 0.3, "reference_model": "tiny-de-ref"}
    de_card = ModelCard(
        name="tiny-de", algorithm="de", config=de, optical_bands=rgb, sar_bands=(), optical_scale=255.0, tile_size=32,
        default_nfe=3, schedule=de_schedule,
    )  # fmt: skip
    out["tiny-de"] = _save(folder / "tiny-de.safetensors", "de", de, de_card)
    return out
