"""ocr-restore: read text that shapes partly cover.

    >>> from ocr_restore import Pipeline, read_image
    >>> pipeline = Pipeline()                         # shipped detector + PConv U-Net + Tesseract
    >>> result = pipeline(read_image("scan.png"))
    >>> result.text, result.mask, result.restored
"""

from .errors import InputFileError, MissingDependencyError, ModelError, OcrError, OcrRestoreError
from .files import read_image, read_mask
from .metrics import score
from .pipeline import Pipeline, Result

__all__ = [
    "Pipeline",
    "Result",
    "read_image",
    "read_mask",
    "score",
    "OcrRestoreError",
    "InputFileError",
    "MissingDependencyError",
    "ModelError",
    "OcrError",
]
