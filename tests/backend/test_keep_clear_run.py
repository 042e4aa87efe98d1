from pathlib import Path

import numpy as np
import rasterio

from backend.job import Job
from backend.reporter import Reporter
from backend.worker import execute

SAMPLE = Path(__file__).resolve().parents[2] / "sample"


def test_keep_clear_leaves_clear_pixels_untouched_and_reports_cloud_cover(tmp_path, tiny_model, capsys):
    optical = str(SAMPLE / "ROIs1868_summer_s2_cloudy_19_p30.tif")
    job = Job(
        algorithm="dbcr", optical=optical, sar=str(SAMPLE / "ROIs1868_summer_s1_19_p30.tif"), model=tiny_model,
        output=str(tmp_path / "out.tif"), device="cpu", threads=1, keep_clear=True, tile_size=128,
    )  # fmt: skip
    assert execute(job, Reporter(events=True)) == 0
    finished = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"cloud_fraction"' in finished
    with rasterio.open(optical) as before, rasterio.open(job.output) as after:
        a, b = before.read().astype(int), after.read().astype(int)
    unchanged = np.all(a == b, axis=0)
    # the sample is about half cloud: a good part is kept exactly, and the clouds were changed
    assert 0.2 < unchanged.mean() < 0.8
