"""One flat exception tree for the backend: every error a user can act on carries a code and a sentence.

The command line turns a :class:`BackendError` into an ``error`` event (its ``code`` and ``message``) and exit
code 2, without a traceback: the message must say what is wrong and what to do. Anything that is not a
:class:`BackendError` is a bug and is reported as ``internal`` (exit code 1) with its traceback on stderr.
"""

from __future__ import annotations


class BackendError(Exception):
    """Base of all errors the user can fix; ``code`` is the protocol's machine-readable error kind.

    Args:
        message: one or two sentences a GIS user can act on, e.g. "S1 and S2 do not overlap".
        code: overrides the class's default code (rarely needed).
    """

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class BadInputError(BackendError):
    """An input raster or a job parameter cannot be used as given (wrong bands, bad value, ...)."""

    code = "bad_input"


class NoOverlapError(BadInputError):
    """The SAR and optical rasters do not share any ground."""

    code = "no_overlap"


class UnreadableFileError(BadInputError):
    """A file does not exist or GDAL cannot read it."""

    code = "unreadable_file"


class OutputError(BackendError):
    """The output cannot be written (folder missing, no permission, disk full)."""

    code = "output"


class ModelError(BackendError):
    """The model cannot be found, loaded or does not fit the job (wrong algorithm, wrong bands)."""

    code = "model"


class DeviceError(BackendError):
    """The requested compute device is not available."""

    code = "device"


class CancelledError(BackendError):
    """The run was stopped on request (a signal or a cancel message); not a failure."""

    code = "cancelled"

    def __init__(self, message: str = "Cancelled on request") -> None:
        super().__init__(message)
