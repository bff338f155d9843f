"""The pipeline: image -> mask -> restored image -> text -> report.

`Pipeline` composes the three stages once (weights load once per process):
`restore` detects and inpaints, `read` reads the result, and `__call__` does both.
`run_file()` is what `ocr-restore scan.png` and `batch` call for one image; `bench`
calls `restore` and `read` itself, to read the baselines beside them. The OCR
stage reads each image, restored or not, as Tesseract alone reads it.

With reading="confident" (the default) the unrestored input is read as well, word by word
(`ocr.more_confident`). A word no hole touches is the input's; where one does, a second opinion
(`judge.InkJudge`, a recogniser scoring both readings on the input's visible ink) keeps the one the ink
supports, or, without its weights, the OCR's clearly more confident one; a word only one reading has is
kept. A restoration that smears a letter an occluder barely touched then costs nothing. Where Tesseract
lays out the two readings of a page differently, they are compared whole: the restored one is kept where the
mask covers much of the page (`ocr.LAYOUT_MASK_SHARE`), the occluders having broken the input's layout, and
elsewhere only where it spells clearly more letters of lexicon words (`language.known_letters`,
`ocr.LAYOUT_MARGIN`): Tesseract is sure of junk too, and reads a page of the same words in another order. With "restored"
only the restored image is read, in half the OCR work (the two readings of "confident" run side by side
where the process has two cores).

Last, the language prior (`language.LanguagePrior`, on unless `language_prior=False`) may change a word
the mask partly hides and the reading is unsure of into the likeliest word that fits its visible ink.
"""

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import detect, inpaint
from .choices import AUTO_STAGES, DPI, READINGS
from .errors import MissingDependencyError, ModelError, OcrError
from .files import (as_mask, check_memory, find_transcript, page_stem, read_image, read_mask, read_page,
                    write_image, write_mask, write_text)
from .formats import write_formats
from .metrics import Score, score
from .nn.weights import read_metadata
from .ocr import Engine, Word, build_engine, more_confident, one_line_crop
from .textscale import estimate_text_height

__all__ = ["Restoration", "Result", "Pipeline"]

WEIGHTS_STAGES = {"seg_unet": "detector", "pconv_unet": "inpainter"}  # the model name a weights file holds


@dataclass
class Restoration:
    """An image's holes and their filling, before any reading."""

    mask: np.ndarray = field(repr=False)  # bool HxW, True = occluded
    restored: np.ndarray = field(repr=False)  # uint8 HxWx3 RGB
    detector: str  # the detector's name, or "given mask"
    em: float | None  # the text's em in pixels away from the mask; None: no text found
    seconds: dict[str, float]  # wall time of "detect" and "inpaint"


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

    restored_text: str | None = None  # OCR of the restored image alone, before the merge
    pixel_text: str | None = None  # the reading before the language prior: what the pixels alone say

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("mask", "restored", "restored_text", "pixel_text")}
        out["occluded_fraction"] = float(self.mask.mean())
        out["size"] = [self.mask.shape[1], self.mask.shape[0]]  # width, height
        return out

    def write(self, base: Path, formats: tuple[str, ...] = (), image_name: str = "", page: int | None = None) -> None:
        """Write `<base>.restored.png`, `.mask.png`, `.txt`, each of `formats` ("hocr": `.hocr`, "alto":
        `.alto.xml`, naming the input `image_name` and its `page`) and, last, `.json`: the JSON marks it done."""
        write_image(base.with_name(base.name + ".restored.png"), self.restored)
        write_mask(base.with_name(base.name + ".mask.png"), self.mask)
        write_text(base.with_name(base.name + ".txt"), self.text + "\n")
        record = self.to_json()
        write_formats(base, record, formats, image_name, page)
        write_text(base.with_name(base.name + ".json"), json.dumps(record, indent=2) + "\n")


def _rates(s: Score) -> dict[str, float]:
    return {"cer": s.cer, "wer": s.wer, "word_accuracy": s.word_accuracy}


def _warn(message: str) -> None:
    print(f"ocr-restore: {message}", file=sys.stderr)


def _build_stage(kind: str, name: str, warn: Callable[[str], None], weights: Path | None = None):
    """Build a detector or inpainter; 'auto' takes the model and falls back, never silently, to the classical
    stage, unless the user named the weights: then a bad file is an error."""
    build = detect.build_detector if kind == "detector" else inpaint.build_inpainter
    if name != "auto":
        return build(name, weights)
    preferred, fallback = AUTO_STAGES[kind]
    try:
        return build(preferred, weights)
    except ModelError as e:
        if weights is not None:
            raise
        warn(f"{e}; falling back to the {fallback} {kind}")
        return build(fallback)


def _stages_of(weights: tuple[Path, ...]) -> dict[str, Path]:
    """Which stage each weights file is for, from the model name it holds."""
    stages = {}
    for path in weights:
        model = read_metadata(path).get("name")
        if model not in WEIGHTS_STAGES:
            raise ModelError(f"{path}: holds a {model!r} model, neither a detector nor an inpainter")
        stages[WEIGHTS_STAGES[model]] = Path(path)
    return stages


class Pipeline:
    """Detector, inpainter and OCR engine, composed once and applied to many images.

    The defaults are the shipped detector (falling back loudly to the classical one), the AUTO_STAGES
    inpainter, Tesseract, the more confident reading of the restored image and the input, word by word, and
    the language prior (off, loudly, where its packages are not installed).
    """

    def __init__(self, detector="auto", inpainter="auto", lang="eng", psm=None, reading="confident", weights=(),
                 ocr="tesseract", language_prior=True, warn=_warn):
        """`weights`: weights files to use instead of the shipped ones (each file names its model); `ocr`: the
        engine (choices.OCR_ENGINES); `language_prior`: whether the prior may change weak words under the mask."""
        if reading not in READINGS:
            raise ValueError(f"unknown reading {reading!r}; choose one of {', '.join(READINGS)}")
        self.ocr = build_engine(ocr, lang, psm, torch.get_num_threads())
        chosen = _stages_of(tuple(weights))
        self.detector = _build_stage("detector", detector, warn, chosen.get("detector"))
        self.inpainter = _build_stage("inpainter", inpainter, warn, chosen.get("inpainter"))
        self.reading = reading
        from .judge import InkJudge
        from .language import LanguagePrior, known_letters

        self.judge = self.language_prior = self.known_letters = None
        try:
            self.judge = InkJudge()
        except MissingDependencyError as e:
            warn(f"{e}; the OCR's confidence chooses between the readings of a word under the mask")
        try:
            self.known_letters = known_letters()
        except MissingDependencyError as e:
            warn(f"{e}; the OCR's confidence chooses between two layouts of a page")
        if language_prior:
            try:
                self.language_prior = LanguagePrior(self.judge.recognizer if self.judge else None)
            except MissingDependencyError as e:
                warn(f"{e}; reading without the language prior")

    def restore(self, image: np.ndarray, mask: np.ndarray | None = None) -> Restoration:
        """Detect (unless `mask` is given) and inpaint."""
        check_memory(image.shape)  # a page too large for the memory bound, or for the memory free now: refused here
        start = time.perf_counter()
        if mask is None:
            detection = self.detector(image)
            mask, em, detector_name = detection.mask, detection.em, self.detector.name
            del detection  # its float probabilities, 4 bytes a pixel, are not kept through the inpainting
        else:
            mask = as_mask(mask, image.shape[:2])  # any array: bool, or a clear error before the work
            em, detector_name = estimate_text_height(image, ignore=mask), "given mask"
        seconds = {"detect": time.perf_counter() - start}
        start = time.perf_counter()
        # the inpainter measures the em away from the holes itself: handed the detector's, measured away from
        # its first pass's mask, 100 tuning IIIT5K words read worse (CER 0.442 -> 0.449, docs/experiments.md)
        restored = self.inpainter(image, mask) if mask.any() else image
        seconds["inpaint"] = time.perf_counter() - start
        return Restoration(mask, restored, detector_name, em, seconds)

    def read(self, image: np.ndarray, restoration: Restoration, transcript: str | None = None,
             reading: str | None = None, ocr: Engine | None = None) -> Result:
        """Read a restoration of `image` as `reading` says, with the engine `ocr` (defaults: the pipeline's);
        with `transcript`, also score the input's reading and ours."""
        reading, ocr_engine = reading or self.reading, ocr or self.ocr
        mask, restored = restoration.mask, restoration.restored
        # without holes the input is the restored image: read once
        read_input = mask.any() and (reading == "confident" or transcript is not None)
        start = time.perf_counter()
        # torch's thread count is this process's share of the cores (batch divides them between workers)
        readings = ocr_engine.read_all([restored, image] if read_input else [restored], torch.get_num_threads())
        seconds = {**restoration.seconds, "ocr": time.perf_counter() - start}
        # without holes the restored image is the input: its words are the input's reading
        ocr = own = readings[0].read_on("restored" if mask.any() else "input", mask)
        input_ocr = readings[1].read_on("input", mask) if read_input else (None if mask.any() else ocr)
        words_from_input = 0
        judged = read_input and reading == "confident" and self.judge is not None and ocr_engine.judged
        if read_input and reading == "confident":
            judge = (lambda mine, theirs: self.judge(image, mask, mine, theirs)) if judged else None
            height, em = image.shape[0], restoration.em
            ocr, words_from_input = more_confident(ocr, input_ocr, ocr_engine.margin, mask=mask, judge=judge,
                                                   keep_new_words=ocr_engine.keep_new_words,
                                                   one_line=one_line_crop(height, em),
                                                   line_room=height / em if em else float("inf"),
                                                   known_letters=self.known_letters)
        pixel_text = ocr.text
        if self.language_prior is not None and mask.any() and ocr_engine.prior_gate > 0:
            ocr = self.language_prior(ocr, restored, mask, ocr_engine.prior_gate, (own, input_ocr))

        stages = {
            "detector": restoration.detector,
            "inpainter": self.inpainter.name,
            "ocr": ocr_engine.describe(ocr),
            "reading": f"{reading}, judged by {self.judge.describe()}" if judged else reading,
            "language": f"{self.language_prior.describe()}, gate {ocr_engine.prior_gate:g}"
                        if self.language_prior and ocr_engine.prior_gate > 0 else "off",
        }
        result = Result(ocr.text, ocr.words, mask, restored, stages, seconds, words_from_input,
                        input_ocr.text if input_ocr else None, restored_text=own.text, pixel_text=pixel_text)
        if transcript is not None:
            result.accuracy = {
                "before": _rates(score(transcript, input_ocr.text)),
                "after": _rates(score(transcript, ocr.text)),
            }
        return result

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None, transcript: str | None = None) -> Result:
        """Restore and read one RGB image; with `transcript`, also score the input's reading and ours."""
        return self.read(image, self.restore(image, mask), transcript)

    def run_file(self, path: str | Path, mask_path: Path | None = None, gt: Path | None = None,
                 page: int | None = None, dpi: int = DPI) -> Result:
        """Read `path` (its page `page`, from 0, if it is a document; a PDF's at `dpi`), its mask and transcript,
        if any, and run the pipeline on it. A page's transcript is its own: scan.p0001.gt.txt, or scan.p0001 in
        a TSV."""
        path = Path(path)
        start = time.perf_counter()
        image = read_image(path) if page is None else read_page(path, page, dpi)
        mask = read_mask(mask_path, image.shape[:2]) if mask_path is not None else None
        transcript = find_transcript(path.with_name(page_stem(path.stem, page) + path.suffix), gt)
        read_seconds = time.perf_counter() - start
        try:
            result = self(image, mask, transcript)
        except OcrError as e:  # Tesseract's faults are per image: name it, as the readers' errors do
            raise OcrError(f"{path}{'' if page is None else f' page {page + 1}'}: {e}") from e
        result.seconds = {"read": read_seconds, **result.seconds}
        return result

