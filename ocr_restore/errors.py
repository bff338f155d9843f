"""Exceptions that carry the process exit code; every message names the file and the fix."""

__all__ = [
    "OcrRestoreError",
    "InputFileError",
    "MissingDependencyError",
    "ModelError",
    "OcrError",
    "OutputError",
]


class OcrRestoreError(Exception):
    """Base class: the CLI turns these into a one-line message and `exit_code`."""

    exit_code = 1


class InputFileError(OcrRestoreError):
    """An input image, mask or transcript cannot be read or does not fit."""

    exit_code = 2


class MissingDependencyError(OcrRestoreError):
    """Tesseract, its language data or a model file is not installed."""

    exit_code = 3


class ModelError(OcrRestoreError):
    """A weights file is missing, corrupt or does not match its config."""

    exit_code = 4


class OcrError(OcrRestoreError):
    """Tesseract crashed or timed out on an image."""

    exit_code = 5


class OutputError(OcrRestoreError):
    """An output folder is in use by another run, or its files cannot be written (a full disk)."""

    exit_code = 6
