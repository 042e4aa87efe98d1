"""Many scenes, one job each: the scene list, the jobs it makes, and which outputs are already complete.

Nothing here knows dask (backend/batch_dask.py hands the jobs out). A scene list is a CSV file with the header
``optical,sar,output``: ``optical`` one raster, or several dates separated by ``;`` (the first gives the grid);
``sar`` may be empty; ``output`` a file name in the output folder, by default the optical file's stem +
``_cloudfree.tif``. Relative input paths are read from the CSV file's folder.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.errors import BackendError, BadInputError, ModelError, UnreadableFileError
from backend.job import Job
from backend.protocol import BATCH_OUTPUT_SUFFIX, partial_path

COLUMNS = ("optical", "sar", "output")
OUTPUT_SUFFIX = BATCH_OUTPUT_SUFFIX


@dataclass(frozen=True)
class Scene:
    """One row of the scene list.

    Attributes:
        name: how messages name the scene: the output's file name.
        row: its line in the CSV file (the header is line 1).
        job: the job to run, or None when the row cannot make one.
        problem: why the row makes no job (a sentence), else None.
    """

    name: str
    row: int
    job: Job | None = None
    problem: str | None = None


def read_scenes(csv_path: str, out_dir: str, settings: Mapping[str, Any]) -> list[Scene]:
    """Read the scene list and make each row's job from ``settings`` (the run's options) and the row.

    A row that cannot make a job is kept as a :class:`Scene` with its ``problem``, so the other rows still run.

    Raises:
        UnreadableFileError: the CSV file cannot be read.
        BadInputError: its header is wrong, it lists no scene, or two rows write the same output.
    """
    folder = Path(csv_path).resolve().parent
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = tuple(name.strip().lower() for name in reader.fieldnames or ())
            rows = [(reader.line_num, _clean(row)) for row in reader]  # line_num: blank lines are skipped
    except OSError as error:
        raise UnreadableFileError(f"Cannot read scene list {csv_path}: {error.strerror or error}") from error
    if "optical" not in header or not set(header) <= set(COLUMNS):
        raise BadInputError(f"Scene list {csv_path} must have the header {','.join(COLUMNS)}, not {','.join(header)}")
    scenes = [_scene(row, line, folder, out_dir, settings) for line, row in rows if any(row.values())]
    if not scenes:
        raise BadInputError(f"Scene list {csv_path} lists no scene")
    seen: dict[str, int] = {}
    for scene in scenes:
        if scene.name in seen:
            raise BadInputError(f"Lines {seen[scene.name]} and {scene.row} of {csv_path} both write {scene.name}")
        seen[scene.name] = scene.row
    return scenes


def _clean(row: Mapping[str | None, str | list[str] | None]) -> dict[str, str]:
    return {(key or "").strip().lower(): value.strip() for key, value in row.items() if isinstance(value, str)}


def _scene(row: Mapping[str, str], line: int, folder: Path, out_dir: str, settings: Mapping[str, Any]) -> Scene:
    dates = [str(folder / path.strip()) for path in row.get("optical", "").split(";") if path.strip()]
    output = row.get("output") or (f"{Path(dates[0]).stem}{OUTPUT_SUFFIX}" if dates else f"line-{line}{OUTPUT_SUFFIX}")
    name = os.path.basename(output)
    if not dates:
        return Scene(name, line, problem=f"Line {line} names no optical raster")
    data = {**settings, "optical": dates, "output": os.path.join(out_dir, name)}
    data.pop("extra_optical", None)
    if row.get("sar"):
        data["sar"] = str(folder / row["sar"])
    try:
        return Scene(name, line, job=Job.from_dict(data))
    except BackendError as error:
        return Scene(name, line, problem=error.message)


def expected_tags(job: Job) -> dict[str, str]:
    """The tags a run of ``job`` writes into its output (``backend.worker.run_tags``).

    Raises:
        ModelError: the job's model cannot be found or has no card.
    """
    from models.card import read_card
    from models.registry import DEFAULT_MODELS, ModelNotFoundError, resolve_weights

    name = job.model or DEFAULT_MODELS.get(job.algorithm)
    if name is None:
        raise BadInputError(f"Unknown algorithm {job.algorithm!r}; give a model with --model")
    try:
        card = read_card(resolve_weights(name))
    except (ModelNotFoundError, ValueError, OSError) as error:
        raise ModelError(f"Cannot read the card of model {name}: {error}") from error
    from backend.worker import run_tags

    return run_tags(job, card)


def is_complete(output: str, tags: Mapping[str, str]) -> bool:
    """Whether ``output`` is a finished output of the same run.

    It exists, no ``.partial`` is beside it (a run is writing it or was killed), GDAL reads it, and it carries
    ``tags``.
    """
    import rasterio
    from rasterio.errors import RasterioError

    if not os.path.isfile(output) or os.path.exists(partial_path(output)):
        return False
    try:
        with rasterio.open(output) as dataset:
            written = dataset.tags()
    except RasterioError:
        return False
    return all(written.get(key) == value for key, value in tags.items())
