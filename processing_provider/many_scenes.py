"""Remove clouds from many scenes: one Processing run of ``python -m backend batch`` over a scene list or a folder.

The scenes come as the batch command's CSV file (``optical,sar,output``; several dates ``;``-separated; relative
paths from the CSV's folder) or as a folder of optical rasters (written into such a list, without Sentinel-1,
by ``scene_list.py``). The settings every scene shares are handed over as a job file (the keys of the backend's job,
bounded by ``RUN_SETTINGS``), never as flags. The backend runs one dask task per scene (its events relayed by
``batch_relay.py``), names failed scenes while the others go on, and skips outputs that are already complete, so
running again finishes what is left.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from qgis.core import (
    Qgis,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtGui import QIcon

from ..backend import protocol
from ..backend.protocol import RUN_SETTINGS
from . import settings
from .backend_process import CANCELLED, backend_problem, remove_outputs, run_process
from .batch_relay import BatchRelay
from .compat import FLAG_ADVANCED, INTEGER
from .help import KEEP_CLEAR_PIXELS, NFE_TRADE_OFF, build_help
from .inputs import ICONS, model_argument
from .parameters import DEVICES, choice_parameter, number_parameter
from .scene_list import count_rows, folder_scene_list

if hasattr(Qgis, "ProcessingFileParameterBehavior"):  # QGIS >= 3.36
    FOLDER_BEHAVIOUR = Qgis.ProcessingFileParameterBehavior.Folder
else:
    FOLDER_BEHAVIOUR = QgsProcessingParameterFile.Behavior.Folder
METHODS = (("dbcr", "DB-CR (Sentinel-1 + Sentinel-2)"), ("diffcr", "DiffCR (Sentinel-2)"), ("de", "DE (RGB / RGB+NIR)"))
NEEDS_SAR = {"dbcr"}

HELP = build_help(
    summary="Removes clouds from many scenes in one run, one after another or several at once on this machine's "
    "cores (or on a running dask cluster). Each scene gets its own GeoTIFF in the output folder, named after its "
    "optical raster (<i>name</i>_cloudfree.tif) unless the scene list names it. A scene that fails is named in the "
    "log with its reason while the others go on; running again skips the outputs that are already complete, so it "
    "finishes what is left. Please cite the method's paper (see its own algorithm's help).",
    inputs=[
        "<li><b>Scene list</b>: a CSV file with the header <i>optical,sar,output</i>, one scene per line: "
        "<i>optical</i> a raster (or several dates of one place separated by <i>;</i>, the first giving the grid), "
        "<i>sar</i> its Sentinel-1 image (VV, VH in dB; needed by DB-CR, optional for DiffCR, empty for DE), "
        "<i>output</i> a file name (may be empty). Relative paths are read from the CSV file's folder.</li>",
        "<li><b>Or a folder of optical rasters</b> (.tif, .tiff, .jp2, .png): every raster is one scene, without "
        "Sentinel-1 (so not for DB-CR, which needs one per scene: use a scene list).</li>",
    ],
    settings=[
        NFE_TRADE_OFF,
        "<li><b>Model</b>: empty for the method's own (or the one chosen in the <i>Cloud removal</i> panel), a "
        "shipped model's name, or a <i>.safetensors</i> weights file.</li>",
        KEEP_CLEAR_PIXELS.replace(" and as the <i>CLOUD_FRACTION</i> output", ""),
        "<li><b>Workers</b>: scenes run at once, each in a process with its own copy of the model (memory grows "
        "with each); the machine's cores are shared among them. <b>Dask scheduler</b> (advanced): the address of a "
        "running cluster (tcp://host:8786) whose workers were started in the plugin folder with the backend's "
        "environment; the workers setting is then unused.</li>",
    ],
)


class ManyScenesAlgorithm(QgsProcessingAlgorithm):
    """Runs ``python -m backend batch`` over a scene list or a folder and reports every scene."""

    METHOD = "METHOD"
    SCENES = "SCENES"
    FOLDER = "FOLDER"
    NFE = "NFE"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    KEEP_CLEAR = "KEEP_CLEAR"
    WORKERS = "WORKERS"
    SCHEDULER = "SCHEDULER"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    WRITTEN = "WRITTEN"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"

    DEVICES = DEVICES

    def name(self) -> str:
        """Return the algorithm id within the provider (``cloudremoval:manyscenes``)."""
        return "manyscenes"

    def displayName(self) -> str:
        """Return the name shown in the toolbox."""
        return "Remove clouds from many scenes"

    def group(self) -> str:
        """Return the toolbox group."""
        return "Remove clouds"

    def groupId(self) -> str:
        """Return the toolbox group's id."""
        return "removeclouds"

    def shortHelpString(self) -> str:
        """Return the help shown beside the parameters."""
        return HELP

    def tags(self) -> list[str]:
        """Return search words for the toolbox."""
        return ["cloud", "removal", "batch", "many", "scenes", "folder", "csv", "dask", "dbcr", "diffcr", "de"]

    def icon(self) -> QIcon:
        """Return the algorithm's icon."""
        return QIcon(self.svgIconPath())

    def svgIconPath(self) -> str:
        """Return the algorithm's icon file (the modeler draws it)."""
        return str(ICONS / "cloud_removal.svg")

    def createInstance(self) -> ManyScenesAlgorithm:
        """Return a new instance (Processing runs each execution on its own copy)."""
        return ManyScenesAlgorithm()

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the scenes, the shared settings, where the outputs go, and the counts."""
        choices = settings.load_choices()
        self.addParameter(QgsProcessingParameterEnum(self.METHOD, "Method", [label for _, label in METHODS]))
        self.addParameter(
            QgsProcessingParameterFile(
                self.SCENES, "Scene list (CSV file: optical,sar,output)", extension="csv", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.FOLDER,
                "Or a folder of optical rasters (no Sentinel-1)",
                FOLDER_BEHAVIOUR,
                optional=True,
            )
        )
        description = "Network evaluations (NFE: fewer = smoother, more = sharper; empty = the model's)"
        self.addParameter(number_parameter(self.NFE, description, RUN_SETTINGS["nfe"], None, True))
        model = QgsProcessingParameterString(self.MODEL, "Model (empty: the method's own)", "", False, True)
        self.addParameter(model)
        device = choice_parameter(self.DEVICE, "Device", self.DEVICES, choices.device)
        keep = QgsProcessingParameterBoolean(
            self.KEEP_CLEAR, "Keep clear pixels (the model fills only the clouds)", choices.keep_clear
        )
        cores = max(1, os.cpu_count() or 1)
        workers = QgsProcessingParameterNumber(self.WORKERS, "Workers (scenes at once)", INTEGER, 1, False, 1, cores)
        scheduler = QgsProcessingParameterString(
            self.SCHEDULER, "Dask scheduler of a running cluster (tcp://host:8786; empty: this machine)", "", False,
            True,
        )  # fmt: skip
        for parameter in (device, keep, workers, scheduler):
            if parameter is not workers:
                parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Output folder"))
        for key, description in (
            (self.WRITTEN, "Scenes written"),
            (self.SKIPPED, "Scenes skipped (already complete)"),
            (self.FAILED, "Scenes failed"),
        ):
            self.addOutput(QgsProcessingOutputNumber(key, description))

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        """Refuse to start without scenes, with both kinds of scenes, or without a backend, saying what to do."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            self._scenes(parameters, context)
        except QgsProcessingException as error:
            return False, str(error)
        problem = backend_problem(settings.backend_python())
        return (False, problem) if problem else (True, "")

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """Run the batch and return the output folder and how many scenes were written, skipped and failed."""
        python = settings.backend_python()
        problem = backend_problem(python)
        if problem:
            raise QgsProcessingException(problem)
        algorithm, csv_file, folder = self._scenes(parameters, context)
        out_text = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
        if not out_text:
            raise QgsProcessingException("Choose the output folder.")
        out_dir = Path(out_text)
        with tempfile.TemporaryDirectory(prefix="cloud_removal_batch_") as temporary:
            if csv_file is None:
                assert folder is not None
                csv_file = folder_scene_list(folder, Path(temporary) / "scenes.csv")
                feedback.pushInfo(f"Scene list of {folder}: {csv_file.read_text(encoding='utf-8').strip()}")
            job = self._settings(algorithm, parameters, context)
            job_file = Path(temporary) / "settings.json"
            job_file.write_text(json.dumps(job, indent=1), encoding="utf-8")
            feedback.pushCommandInfo(f"Settings of every scene ({job_file}): {json.dumps(job)}")
            arguments = ["batch", algorithm, "--scenes", str(csv_file), "--out-dir", str(out_dir)]
            scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip()
            if scheduler:
                arguments += ["--scheduler", scheduler]
            else:
                arguments += ["--workers", str(self.parameterAsInt(parameters, self.WORKERS, context))]
            events = BatchRelay(feedback, count_rows(csv_file))
            try:
                run_process(python, [*arguments, "--job", str(job_file), "--events"], feedback, events)
            except QgsProcessingException as error:
                if str(error) == CANCELLED:
                    remove_outputs(*(Path(protocol.partial_path(str(out_dir / name))) for name in events.started))
                    raise QgsProcessingException(
                        f"Cancelled: the scenes written so far are in {out_dir}; running again skips them."
                    ) from None
                if events.failed:
                    names = ", ".join(events.failed)
                    raise QgsProcessingException(
                        f"{len(events.failed)} of {events.total} scenes failed: {names} (their reasons are in the "
                        f"log); the others are in {out_dir}."
                    ) from None
                raise
        stats = events.finished.get("stats") if events.finished is not None else None
        stats = stats if isinstance(stats, dict) else {}
        written, skipped = int(stats.get("finished", 0)), int(stats.get("skipped", 0))
        feedback.pushInfo(f"{written} scenes written, {skipped} already complete, in {out_dir}.")
        return {self.OUTPUT_FOLDER: str(out_dir), self.WRITTEN: written, self.SKIPPED: skipped, self.FAILED: 0}

    def _scenes(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[str, Path | None, Path | None]:
        """The method and the scene list or folder, exactly one of them."""
        algorithm = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)][0]
        csv_text = self.parameterAsFile(parameters, self.SCENES, context).strip()
        folder_text = self.parameterAsFile(parameters, self.FOLDER, context).strip()
        if bool(csv_text) == bool(folder_text):
            raise QgsProcessingException("Give either a scene list (CSV file) or a folder of optical rasters.")
        if csv_text:
            if not Path(csv_text).is_file():
                raise QgsProcessingException(f"The scene list {csv_text} does not exist.")
            return algorithm, Path(csv_text), None
        if algorithm in NEEDS_SAR:
            raise QgsProcessingException(
                "DB-CR needs a Sentinel-1 image for each scene: list the scenes in a CSV file (optical,sar,output) "
                "instead of giving a folder."
            )
        if not Path(folder_text).is_dir():
            raise QgsProcessingException(f"The folder {folder_text} does not exist.")
        return algorithm, None, Path(folder_text)

    def _settings(self, algorithm: str, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The job keys every scene shares."""
        job: dict[str, Any] = {"algorithm": algorithm}
        if parameters.get(self.NFE) not in (None, ""):
            job["nfe"] = self.parameterAsInt(parameters, self.NFE, context)
        model = self.parameterAsString(parameters, self.MODEL, context).strip() or settings.method_model(algorithm, "")
        if model:
            job["model"] = model_argument(model)
        job["device"] = self.DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)][0]
        job["keep_clear"] = self.parameterAsBoolean(parameters, self.KEEP_CLEAR, context)
        if job["keep_clear"]:
            job["cloud_threshold"] = settings.load_choices().cloud_threshold
        return job
