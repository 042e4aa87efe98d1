import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend import extra_outputs
from backend.errors import BadInputError
from backend.extra_outputs import check_extra_outputs
from backend.job import Job
from backend.reporter import Reporter
from backend.worker import execute

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
OPTICAL = str(SAMPLE / "ROIs1868_summer_s2_cloudy_19_p30.tif")
SAR = str(SAMPLE / "ROIs1868_summer_s1_19_p30.tif")


def test_a_mask_needs_sentinel_2_bands(kit):
    card = kit.make_card()
    check_extra_outputs({"mask": "m.tif", "change": "c.tif"}, card)
    rgb = kit.make_card(bands=("B4", "B3", "B2"), sar=False)
    check_extra_outputs({"change": "c.tif"}, rgb)
    with pytest.raises(BadInputError, match="needs Sentinel-2 bands"):
        check_extra_outputs({"mask": "m.tif"}, rgb)


def test_the_core_never_imports_a_command():
    source = Path(extra_outputs.__file__).read_text()
    assert "backend.commands" not in source and "argparse" not in source


def test_mask_and_change_are_written_on_the_grid(tmp_path, tiny_model, capsys):
    (tmp_path / "sub").mkdir()
    job = Job(
        algorithm="dbcr",
        optical=OPTICAL,
        sar=SAR,
        model=tiny_model,
        output=str(tmp_path / "out.tif"),
        device="cpu",
        threads=1,
        tile_size=128,
        keep_clear=True,
        cloud_mask_output=str(tmp_path / "chosen-mask.tif"),
        change_output=str(tmp_path / "sub" / "chosen-change.tif"),
    )
    assert execute(job, Reporter(events=True)) == 0
    finished = [line for line in capsys.readouterr().out.splitlines() if '"finished"' in line][-1]
    assert '"cloud_fraction"' in finished
    assert json.loads(finished)["stats"]["extra_outputs"] == job.extra_outputs  # written where the job said
    assert sorted(path.name for path in tmp_path.glob("*.tif")) == ["chosen-mask.tif", "out.tif"]
    with (
        rasterio.open(OPTICAL) as source,
        rasterio.open(job.cloud_mask_output) as mask,
        rasterio.open(job.change_output) as change,
    ):
        assert mask.transform == source.transform and change.shape == source.shape
        cloud = mask.read(1) == 1
        delta = change.read(1)
    assert 0.3 < cloud.mean() < 0.7
    # keep-clear: no change far from the clouds, change under them
    assert np.median(delta[~cloud]) == 0 and delta[cloud].mean() > 0
