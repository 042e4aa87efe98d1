"""``python -m backend eval-sets``: the pure helpers and the RICE2 hold-out (the same pairs DE never trains on)."""

import numpy as np
from PIL import Image

from backend.commands import eval_sets
from models.training.chips import scale_sar_db
from models.training.rice_pairs import load_pairs, split_pairs


def test_sar_goes_back_to_db_and_missing_radar_to_the_bottom_of_each_range():
    db = np.stack([np.full((4, 4), -12.0), np.full((4, 4), -20.0)]).astype(np.float32)
    assert np.allclose(eval_sets.sar_to_db(scale_sar_db(db)), db, atol=1e-5)
    missing = eval_sets.sar_to_db(np.zeros((2, 1, 1), np.float32))
    assert missing.ravel().tolist() == [-25.0, -32.5]


def test_cover_counts_visibly_changed_pixels_only():
    clear = np.zeros((13, 10, 10), np.float32)
    cloudy = clear.copy()
    cloudy[1:4, :3] = 0.5  # a bright cloud over 3 of 10 rows
    cloudy[10] = 0.5  # the cirrus band alone is not a visible change
    assert eval_sets.cloud_cover(clear, cloudy) == 0.3


def test_reflectance_becomes_l1c_digital_numbers():
    assert eval_sets.to_dn(np.array([-0.1, 0.12345, 7.0])).tolist() == [0, 1234, 65535]


def test_rice2_hold_out_is_the_training_split(tmp_path):
    rice = tmp_path / "rice2"
    rice.mkdir()
    for index in range(1, 23):
        for suffix, value in (("A", 200), ("B", 50)):
            Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(rice / f"{index}_real_{suffix}.png")
    assert eval_sets.copy_rice2_held_out(tmp_path, tmp_path / "out") == 2
    _, held = split_pairs(load_pairs(rice))
    assert sorted(p.stem for p in (tmp_path / "out" / "cloudy").iterdir()) == sorted(held.names)
    assert sorted(p.name for p in (tmp_path / "out" / "target").iterdir()) == [f"{n}.png" for n in sorted(held.names)]
    assert eval_sets.copy_rice2_held_out(tmp_path, tmp_path / "none", "rice2-512") == 0  # a folder not there


def test_the_rgb_version_takes_b4_b3_b2_with_one_fixed_stretch():
    dn = np.zeros((13, 2, 2), np.uint16)
    dn[3], dn[2], dn[1] = 3000, 1500, 6000  # B4 at white, B3 at half, B2 above white
    rgb = eval_sets.to_eight_bit_rgb(dn)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 128, 255]


def _tif(path, value, count=13):
    import rasterio
    from affine import Affine

    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=4, height=4, count=count, dtype="uint16", crs="EPSG:32631")
    with rasterio.open(path, "w", transform=Affine(10, 0, 0, 0, -10, 0), **profile) as dst:
        dst.write(np.full((count, 4, 4), value, np.uint16))


def test_real_pairs_of_the_held_out_scenes_only_and_series_items_by_date(tmp_path):
    from models.datasets.paired import find_paired
    from models.datasets.real_pairs import HELD_OUT_PAIR_SCENES, SERIES_DIR, SERIES_ITEMS

    pairs = tmp_path / "sen12ms-cr-pairs"
    rows = [("kept_p1", HELD_OUT_PAIR_SCENES[0]), ("trained_p2", "ROIs1970_fall_136")]
    (pairs).mkdir()
    (pairs / "manifest.csv").write_text("patch,scene\n" + "".join(f"{p},{s}\n" for p, s in rows))
    for patch, _ in rows:
        _tif(pairs / "pairs" / "cloudy" / f"{patch}.tif", 5000)
        _tif(pairs / "pairs" / "clear" / f"{patch}.tif", 500)
    assert eval_sets.copy_real_pairs(tmp_path, tmp_path / "out") == 1
    items = find_paired(tmp_path / "out")
    assert [item.name for item in items] == ["kept_p1.tif"] and items[0].sar is not None

    for index in range(20):
        _tif(tmp_path / SERIES_DIR / f"ImgNo_{index:02d}_2018-01-{index + 1:02d}.tif", index)
    assert eval_sets.copy_series(tmp_path, tmp_path / "series") == len(SERIES_ITEMS)
    first = find_paired(tmp_path / "series")[0]
    cloudy, extra, target = SERIES_ITEMS[0]
    import rasterio

    values = [rasterio.open(path).read(1)[0, 0] for path in (first.cloudy, *first.extra, first.target)]
    assert values == [cloudy, *extra, target] and target not in (cloudy, *extra)
