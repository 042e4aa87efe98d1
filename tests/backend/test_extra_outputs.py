from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.errors import BadInputError
from backend.extra_outputs import extra_output_path
from backend.job import Job
from backend.reporter import Reporter
from backend.worker import execute

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
OPTICAL = str(SAMPLE / "ROIs1868_summer_s2_cloudy_19_p30.tif")
SAR = str(SAMPLE / "ROIs1868_summer_s1_19_p30.tif")


def test_paths_sit_beside_the_output():
    assert extra_output_path("/x/out.tif", "mask") == "/x/out_cloudmask.tif"
    assert extra_output_path("/x/out.tif", "change") == "/x/out_change.tif"


def test_extra_outputs_are_parsed_and_checked():
    base = {"algorithm": "dbcr", "optical": OPTICAL, "output": "/tmp/o.tif"}
    job = Job.from_dict({**base, "extra_outputs": "mask,change"})
    assert job.extra_outputs == ("mask", "change")
    with pytest.raises(BadInputError, match="Unknown extra output"):
        Job.from_dict({**base, "extra_outputs": "snow"})


def test_mask_and_change_are_written_on_the_grid(tmp_path, tiny_model, capsys):
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
        extra_outputs=("mask", "change"),
    )
    assert execute(job, Reporter(events=True)) == 0
    assert '"cloud_fraction"' in capsys.readouterr().out
    with (
        rasterio.open(OPTICAL) as source,
        rasterio.open(tmp_path / "out_cloudmask.tif") as mask,
        rasterio.open(tmp_path / "out_change.tif") as change,
    ):
        assert mask.transform == source.transform and change.shape == source.shape
        cloud = mask.read(1) == 1
        delta = change.read(1)
    assert 0.3 < cloud.mean() < 0.7
    # keep-clear: no change far from the clouds, change under them
    assert np.median(delta[~cloud]) == 0 and delta[cloud].mean() > 0
