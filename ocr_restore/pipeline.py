"""The pipeline: image -> mask -> restored image -> text -> report.

`build_pipeline()` composes the three stages once (weights load once per
process); `Pipeline.run_file()` is what `ocr-restore scan.png`, `batch` and
`bench` all call for one image.

With reading="confident" (the default) the unrestored input is read as well,
and a word of it replaces the restored word when Tesseract is clearly more
confident of it, or when the restored reading lost it (`ocr.more_confident`):
a restoration that smears a letter an occluder barely touched then costs
nothing. With "restored" only the restored image is read, in half the OCR work (the two readings of
"confident" run side by side where the process has two cores).
"""

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import detect, inpaint
from .errors import InputFileError, ModelError
from .files import read_image, read_mask, read_transcripts
from .metrics import Score, score
from .ocr import Word, check_tesseract, more_confident, recognise_all, tesseract_version

__all__ = ["READINGS", "Result", "Pipeline", "build_pipeline", "find_transcript"]

# What "auto" runs, and the classical stage it falls back to, loudly, when the weights are missing.
# PConv replaced Telea as the default inpainter once it read better end to end (`make bench`, models/README.md).
AUTO_STAGES = {"detector": ("model", "classical"), "inpainter": ("pconv", "telea")}
READINGS = ("confident", "restored")


@dataclass
class Result:
    """Everything the pipeline learnt about one image."""

    text: str
    words: list[Word]
    mask: np.ndarray = field(repr=False)  # bool HxW, True = occluded
    restored: np.ndarray = field(repr=False)  # uint8 HxWx3 RGB
    stages: dict[str, str]  # which detector, inpainter and OCR ran
    seconds: dict[str, float]  # wall time per stage
    words_from_input: int = 0  # words of `text` read from the unrestored input (reading="confident")
    input_text: str | None = None  # OCR of the unrestored input, when it was read
    accuracy: dict[str, dict[str, float]] | None = None  # {"before": {...}, "after": {...}} against the transcript

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("mask", "restored")}
        out["occluded_fraction"] = float(self.mask.mean())
        return out


def _rates(s: Score) -> dict[str, float]:
    return {"cer": s.cer, "wer": s.wer, "word_accuracy": s.word_accuracy}


def find_transcript(image_path: Path, gt: Path | None = None) -> str | None:
    """The transcript for `image_path`: `gt` (a plain transcript, a TSV or a folder of sidecars keyed by stem) or a `<stem>.gt.txt` beside the image."""
    if gt is not None:
        if gt.is_dir() or gt.suffix.lower() == ".tsv":
            return read_transcripts(gt).get(image_path.stem)
        if not gt.is_file():
            raise InputFileError(f"{gt}: transcript file not found")
        return gt.read_text(encoding="utf-8").rstrip("\n")
    sidecar = image_path.with_name(image_path.stem + ".gt.txt")
    return sidecar.read_text(encoding="utf-8").rstrip("\n") if sidecar.is_file() else None


def _warn(message: str) -> None:
    print(f"ocr-restore: {message}", file=sys.stderr)


def _build_stage(kind: str, name: str, warn: Callable[[str], None]):
    """Build a detector or inpainter; 'auto' takes the model and falls back, never silently, to the classical stage."""
    build = detect.build_detector if kind == "detector" else inpaint.build_inpainter
    if name != "auto":
        return build(name)
    preferred, fallback = AUTO_STAGES[kind]
    try:
        return build(preferred)
    except ModelError as e:
        warn(f"{e}; falling back to the {fallback} {kind}")
        return build(fallback)


class Pipeline:
    """Detector, inpainter and Tesseract, composed once and applied to many images."""

    def __init__(self, detector="auto", inpainter="auto", lang="eng", psm=None, reading="confident", warn=_warn):
        if reading not in READINGS:
            raise ValueError(f"unknown reading {reading!r}; choose one of {', '.join(READINGS)}")
        check_tesseract(lang)
        self.detector = _build_stage("detector", detector, warn)
        self.inpainter = _build_stage("inpainter", inpainter, warn)
        self.lang, self.psm, self.reading = lang, psm, reading

    def restore(self, image: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, str, dict]:
        """Detect (unless `mask` is given) and inpaint: (mask, restored, detector name, seconds per stage)."""
        seconds = {}
        start = time.perf_counter()
        if mask is None:
            mask = self.detector(image).mask
            detector_name = self.detector.name
        else:
            detector_name = "given mask"
        seconds["detect"] = time.perf_counter() - start

        start = time.perf_counter()
        restored = self.inpainter(image, mask) if mask.any() else image
        seconds["inpaint"] = time.perf_counter() - start
        return mask, restored, detector_name, seconds

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None, transcript: str | None = None) -> Result:
        """Restore and read one RGB image; with `transcript`, also score the input's reading and ours."""
        mask, restored, detector_name, seconds = self.restore(image, mask)

        # without holes the input is the restored image: read once
        read_input = mask.any() and (self.reading == "confident" or transcript is not None)
        start = time.perf_counter()
        # torch's thread count is this process's share of the cores (batch divides them between workers)
        readings = recognise_all([restored, image] if read_input else [restored], self.lang, self.psm,
                                 processes=torch.get_num_threads())
        seconds["ocr"] = time.perf_counter() - start
        ocr = readings[0]
        input_ocr = readings[1] if read_input else (None if mask.any() else ocr)
        words_from_input = 0
        if read_input and self.reading == "confident":
            ocr, words_from_input = more_confident(ocr, input_ocr)

        stages = {
            "detector": detector_name,
            "inpainter": self.inpainter.name,
            "ocr": f"tesseract {tesseract_version()} lang={self.lang} psm={ocr.psm}",
            "reading": self.reading,
        }
        result = Result(ocr.text, ocr.words, mask, restored, stages, seconds, words_from_input,
                        input_ocr.text if input_ocr else None)
        if transcript is not None:
            result.accuracy = {
                "before": _rates(score(transcript, input_ocr.text)),
                "after": _rates(score(transcript, ocr.text)),
            }
        return result

    def run_file(self, path: str | Path, mask_path: Path | None = None, gt: Path | None = None) -> Result:
        """Read `path` (and its mask and transcript, if any) and run the pipeline on it."""
        path = Path(path)
        start = time.perf_counter()
        image = read_image(path)
        mask = read_mask(mask_path, image.shape[:2]) if mask_path is not None else None
        transcript = find_transcript(path, gt)
        read_seconds = time.perf_counter() - start
        result = self(image, mask, transcript)
        result.seconds = {"read": read_seconds, **result.seconds}
        return result


def build_pipeline(detector: str = "auto", inpainter: str = "auto", lang: str = "eng", psm: int | None = None,
                   reading: str = "confident") -> Pipeline:
    """The default pipeline: the shipped detector (falling back loudly to the classical one), the AUTO_STAGES
    inpainter, and the more confident reading of the restored image and the input, word by word."""
    return Pipeline(detector, inpainter, lang, psm, reading)
