"""ocr-restore: read text that shapes partly cover.

    >>> from ocr_restore import Pipeline, read_image
    >>> pipeline = Pipeline()                # shipped detector + PConv U-Net + Tesseract
    >>> result = pipeline(read_image("scan.png"))
    >>> result.text, result.mask, result.restored

The names below load their modules on first use, so that the command line answers
`--help` without importing torch.
"""

import importlib

__all__ = ["Pipeline", "Result", "read_image", "read_mask", "score", "OcrRestoreError", "InputFileError",
           "MissingDependencyError", "ModelError", "OcrError"]

_HOMES = {"Pipeline": "pipeline", "Result": "pipeline", "read_image": "files", "read_mask": "files", "score": "metrics",
          **{name: "errors" for name in __all__[5:]}}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'ocr_restore' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
