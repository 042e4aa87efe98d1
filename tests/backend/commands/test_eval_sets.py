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


def test_the_rgb_version_takes_b4_b3_b2_with_one_fixed_stretch():
    dn = np.zeros((13, 2, 2), np.uint16)
    dn[3], dn[2], dn[1] = 3000, 1500, 6000  # B4 at white, B3 at half, B2 above white
    rgb = eval_sets.to_eight_bit_rgb(dn)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 128, 255]
