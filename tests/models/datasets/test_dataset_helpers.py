from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from models.datasets import RandomDihedral, dihedral, find_paired, split_by_place
from models.datasets.rasters import DatasetError, read_reflectance, sar_to_unit, to_reflectance


def test_dihedral_ops_are_the_eight_distinct_symmetries():
    image = torch.arange(9.0).reshape(1, 3, 3)
    results = {tuple(dihedral(image, op).flatten().tolist()) for op in range(8)}
    assert len(results) == 8
    assert torch.equal(dihedral(image, 0), image)
    with pytest.raises(ValueError):
        dihedral(image, 8)


def test_random_dihedral_moves_all_images_of_a_sample_together():
    image = torch.arange(16.0).reshape(1, 4, 4)
    sample = {"cloudy": image, "target": image.clone(), "sar": image.repeat(2, 1, 1), "name": "x"}
    out = RandomDihedral(torch.Generator().manual_seed(3))(sample)
    assert torch.equal(out["cloudy"], out["target"]) and torch.equal(out["sar"][1], out["cloudy"][0])
    assert out["name"] == "x"


def test_split_by_place_is_deterministic_and_never_mixes_places():
    places = [f"scene{i % 7}" for i in range(40)]
    first = split_by_place(places, seed=1)
    assert first == split_by_place(list(places), seed=1)
    assert sorted(i for part in first.values() for i in part) == list(range(40))
    owner = {places[i]: name for name, part in first.items() for i in part}
    for name, part in first.items():
        assert all(owner[places[i]] == name for i in part)
    assert all(first[name] for name in ("train", "val", "test"))
    # the assignment depends on the set of places, not on the order of items
    reordered = list(reversed(places))
    again = split_by_place(reordered, seed=1)
    assert {reordered[i] for i in again["test"]} == {places[i] for i in first["test"]}
    with pytest.raises(ValueError):
        split_by_place(places, {"train": -1.0})


def test_scaling_rules():
    assert to_reflectance(np.array([[[255]]], np.uint8))[0, 0, 0] == 1.0
    assert to_reflectance(np.array([[[2500]]], np.uint16))[0, 0, 0] == pytest.approx(0.25)
    assert to_reflectance(np.array([[[np.nan, 1.7]]], np.float32)).tolist() == [[[0.0, 1.0]]]
    sar = sar_to_unit(np.array([[[-25.0, 0.0]], [[-32.5, -16.25]]], np.float32))
    assert sar.tolist() == [[[0.0, 1.0]], [[0.0, 0.5]]]


def test_paired_folder(tmp_path: Path):
    for folder in ("cloudy", "target", "sar"):
        (tmp_path / folder).mkdir()
    with rasterio.open(
        tmp_path / "cloudy" / "a.tif", "w", driver="GTiff", width=2, height=2, count=1, dtype="uint16"
    ) as dst:
        dst.write(np.full((1, 2, 2), 5000, np.uint16))
    (tmp_path / "target" / "a.tif").write_bytes((tmp_path / "cloudy" / "a.tif").read_bytes())
    with pytest.raises(DatasetError, match="not in sar/"):
        find_paired(tmp_path)
    (tmp_path / "sar" / "a.tif").write_bytes(b"")
    (items,) = find_paired(tmp_path)
    assert items.name == "a.tif" and items.sar == tmp_path / "sar" / "a.tif"
    assert read_reflectance(items.cloudy)[0, 0, 0] == pytest.approx(0.5)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "cloudy" / "b.png")
    with pytest.raises(DatasetError, match=r"b\.png is in cloudy/ but not in target/"):
        find_paired(tmp_path)
    with pytest.raises(DatasetError, match="cloudy/ and target/"):
        find_paired(tmp_path / "target")
