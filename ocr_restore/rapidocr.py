"""The second OCR engine: PP-OCRv4, run on onnxruntime from the models the `rapidocr_onnxruntime` wheel ships.

A neural recogniser reads photos of signs and receipts far better than Tesseract does (clean held-out
receipt lines: CER 0.019 against 0.072, ../shared/PRETRAINED.md). Only the wheel's three ONNX files
are used; the code that runs them is ours, so the wheel is installed without its dependencies: it asks
for `opencv-python`, whose GUI build overwrites the headless OpenCV ocr-restore uses and needs libGL.

A crop of one line or word is recognised whole, as the scene-text protocol reads it; anything taller
is first cut into lines by PP-OCR's DB detector. Text is assumed upright (the orientation classifier
is not run: scans and receipts come the right way up). Recognition is CTC: each output column is a
stretch of the line, so a word's box runs from its first character's column to its last.
"""

import importlib.util
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import MissingDependencyError, ModelError
from .ocr import OcrResult, Word, _auto_psm, _is_blank, paper_grey
from .textscale import estimate_text_height

__all__ = ["RapidOcr", "models_dir"]

PACKAGE = "rapidocr_onnxruntime"
VERSION = "1.4.4"
INSTALL = (f"pip install onnxruntime && pip install --no-deps {PACKAGE}=={VERSION} (or `make setup`; --no-deps "
           "keeps its opencv-python from replacing the headless OpenCV)")
DETECTOR_FILE, RECOGNISER_FILE = "ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"
ONE_LINE_PSMS = (7, 8, 13)  # Tesseract's single line, single word and raw line: recognise the image whole

# recognition, as PP-OCRv4 was trained: BGR, 48 px high, at least 320 wide, in [-1, 1]
REC_HEIGHT, REC_MIN_WIDTH, REC_BATCH = 48, 320, 6
# detection, PP-OCR's DB defaults (rapidocr's config.yaml): the short side brought up to 736, the long side kept
# under 2000, probabilities over 0.3 are text, a region whose mean is under 0.5 is dropped, and each region is
# grown by area * 1.6 / perimeter, since DB learns to predict shrunk text
DET_SHORT_SIDE, DET_MAX_SIDE, DET_THRESHOLD, BOX_THRESHOLD, UNCLIP_RATIO, MIN_BOX_SIDE = 736, 2000, 0.3, 0.5, 1.6, 3
MAX_BOXES = 1000
# Confidence points by which the restored reading's word must beat the input's to be kept (ocr.more_confident): PP-OCR
# reads through an occluder far better than Tesseract does, and our restorations cost it more than they give.
# Chosen on the seed-1100 tuning sets (100 receipt lines, 100 IIIT5K words, detected masks; CER at -100 / -30 /
# -20 / 0 / 5): receipts 0.1448 / 0.1448 / 0.1468 / 0.1655 / 0.1764, words 0.2180 / 0.2117 / 0.2138 / 0.2369 /
# 0.2621; the input alone 0.1330 and 0.2117.
# Read again on 200 words and 200 receipt lines that train_real holds out (`synth --real ... --held-out --seed 1200`,
# detected masks, run 5; CER at -40 / -30, the input alone): words 0.1312 / 0.1344, 0.1323; receipts 0.1860 /
# 0.1860, 0.1848. With the restored reading's words that the input's lacks dropped (keep_new_words): words
# 0.1323 / 0.1355, receipts 0.1844 / 0.1844, the one setting that reads no worse than the input on both.
CONFIDENCE_MARGIN = -40.0
# The language prior is off for PP-OCR's words (language.LanguagePrior's gate, ocr.Engine.prior_gate). Its
# confidences are on another scale than Tesseract's, and on the seed-1100 tuning readings (true masks) the
# prior at Tesseract's gate of 70 changed 14 words of 60 documents for a CER of 0.3176 -> 0.3177, and none of
# 100 receipt lines.
LANGUAGE_GATE = 0.0
# An inkless stretch between two characters at least SPACE_WIDTH wide, in heights of the line's ink, is a space;
# NARROW_FACTOR times that for each narrow glyph beside it, which a monospaced font pads with blank ("7.0" in a
# receipt's font has gaps of half a height). Chosen on 400 held-out receipt lines of train_real and 30 tuning
# documents (seed 1100), CER receipts / documents: the recogniser's own spaces only 0.0573 / 0.103; width 0.4 and
# factor 1: 0.0435 / 0.0915; 0.4 and 1.5: 0.0433 / 0.0939; 0.35 and 1.5: 0.0419 / 0.0882; 0.3 and 1.5: 0.0423 /
# 0.0765; 0.3 and 1.75: 0.0429 / 0.0784; 0.3 and 2: 0.0440 / -; 0.5 and 1: 0.0446 / -.
SPACE_WIDTH = 0.3
NARROW, NARROW_FACTOR = set(".,:;'\"!|()[]iIl1"), 1.75


def models_dir() -> Path:
    """The installed wheel's models/ folder, found without importing the package (its code needs pyclipper)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"--ocr rapidocr needs the PP-OCRv4 models of {PACKAGE} {VERSION}: {INSTALL}")
    folder = Path(spec.submodule_search_locations[0]) / "models"
    for name in (DETECTOR_FILE, RECOGNISER_FILE):
        if not (folder / name).is_file():
            raise ModelError(f"{folder / name}: not found; reinstall it: pip install --no-deps --force-reinstall "
                             f"{PACKAGE}=={VERSION}")
    return folder


def _session(path: Path, threads: int):
    try:
        import onnxruntime
    except ImportError as e:
        raise MissingDependencyError(f"--ocr rapidocr needs onnxruntime ({e}): {INSTALL}") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = max(1, threads), 1
    options.log_severity_level = 3  # its warnings about unused initialisers are not the user's
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for a truncated or foreign file
        raise ModelError(f"{path}: onnxruntime cannot load it ({e}); reinstall it: "
                         f"pip install --no-deps --force-reinstall {PACKAGE}=={VERSION}") from e


def _to_input(bgr: np.ndarray) -> np.ndarray:
    return ((bgr.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


@dataclass
class _Line:
    """A line's crop and where it lies in the image: x0 + column * x_scale maps a crop column back."""

    crop: np.ndarray  # RGB, upright
    x0: float
    x_scale: float
    rows: tuple[int, int]  # y0, y1 in the image


@dataclass
class RapidOcr:
    """PP-OCRv4 behind the OCR stage's interface: `read_all` returns OcrResults with word boxes and confidences.

    `psm` follows Tesseract's meaning as far as it goes: 7, 8 and 13 read the image as one line, any other
    mode detects lines; None chooses as Tesseract's does, from the text height. Confidences are the mean
    probability of a word's characters, times 100, on Tesseract's scale.
    """

    psm: int | None = None
    threads: int = 1
    name: str = field(default="rapidocr", init=False)
    margin: float = field(default=CONFIDENCE_MARGIN, init=False)
    prior_gate: float = field(default=LANGUAGE_GATE, init=False)
    # on the tuning readings it cost PP-OCR accuracy (IIIT5K 0.212 -> 0.239): PP-OCR reads scene words better than the CRNN
    judged: bool = field(default=False, init=False)
    # a word PP-OCR reads in the filling but not through the occluder is mostly the filling (CONFIDENCE_MARGIN above)
    keep_new_words: bool = field(default=False, init=False)

    def __post_init__(self):
        folder = models_dir()
        self._detector = _session(folder / DETECTOR_FILE, self.threads)
        self._recogniser = _session(folder / RECOGNISER_FILE, self.threads)
        characters = self._recogniser.get_modelmeta().custom_metadata_map.get("character")
        if not characters:
            raise ModelError(f"{folder / RECOGNISER_FILE}: holds no character list; not PP-OCRv4's recogniser")
        self._alphabet = ["", *characters.splitlines(), " "]  # CTC blank first; the space PP-OCR appends last

    def describe(self, result: OcrResult) -> str:
        layout = "one line" if result.psm in ONE_LINE_PSMS else "detected lines"
        return f"rapidocr PP-OCRv4 ({PACKAGE} {VERSION}) layout={layout}"

    def read_all(self, images: list[np.ndarray], processes: int = 1) -> list[OcrResult]:
        """Read each RGB uint8 image, in order (onnxruntime uses the threads given when the engine was built)."""
        return [self.read(image) for image in images]

    def read(self, image: np.ndarray) -> OcrResult:
        em = estimate_text_height(image)
        psm = self.psm if self.psm is not None else _auto_psm(image, em)
        if em is None and _is_blank(image):  # as for Tesseract: a blank image has no text
            return OcrResult("", [], psm)
        if psm in ONE_LINE_PSMS:
            lines = [_Line(image, 0.0, 1.0, (0, image.shape[0]))]
        else:
            lines = [line for box in self._detect(image) if (line := _crop(image, box)) is not None]
        words = self._recognise(lines)
        return OcrResult.from_lines(_rows(words), psm)

    # -- detection: DB probabilities -> rotated boxes of lines
    def _detect(self, image: np.ndarray) -> list[np.ndarray]:
        height, width = image.shape[:2]
        scale = max(1.0, DET_SHORT_SIDE / min(height, width))
        scale = min(scale, DET_MAX_SIDE / max(height, width))
        size = (max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32))
        resized = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), size)
        probability = self._detector.run(None, {"x": _to_input(resized)[None]})[0][0, 0]
        text = cv2.dilate((probability > DET_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(text, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        back = np.array([width / size[0], height / size[1]], np.float32)
        boxes = []
        for contour in contours[:MAX_BOXES]:
            (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
            if min(w, h) < MIN_BOX_SIDE or _mean_inside(probability, contour) < BOX_THRESHOLD:
                continue
            # DB's unclip: offsetting a w x h rectangle by d gives one of (w + 2d) x (h + 2d)
            grow = w * h * UNCLIP_RATIO / (2 * (w + h))
            if min(w, h) + 2 * grow < MIN_BOX_SIDE + 2:
                continue
            corners = cv2.boxPoints(((cx, cy), (w + 2 * grow, h + 2 * grow), angle)) * back
            boxes.append(np.clip(corners, 0, [width - 1, height - 1]))
        return boxes

    # -- recognition: line crops -> words, with boxes from the CTC columns
    def _recognise(self, lines: list[_Line]) -> list[tuple[Word, tuple[int, int]]]:
        words = []
        order = sorted(range(len(lines)), key=lambda i: lines[i].crop.shape[1] / lines[i].crop.shape[0])
        for start in range(0, len(order), REC_BATCH):
            batch = [lines[i] for i in order[start:start + REC_BATCH]]
            ratio = max(REC_MIN_WIDTH / REC_HEIGHT, *(line.crop.shape[1] / line.crop.shape[0] for line in batch))
            width = int(REC_HEIGHT * ratio)
            inputs = np.zeros((len(batch), 3, REC_HEIGHT, width), np.float32)
            widths = []
            for k, line in enumerate(batch):
                h, w = line.crop.shape[:2]
                resized_width = min(width, math.ceil(REC_HEIGHT * w / h))
                resized = cv2.resize(cv2.cvtColor(line.crop, cv2.COLOR_RGB2BGR), (resized_width, REC_HEIGHT))
                inputs[k, :, :, :resized_width] = _to_input(resized)
                widths.append(resized_width)
            probabilities = self._recogniser.run(None, {"x": inputs})[0]
            for line, resized_width, columns in zip(batch, widths, probabilities):
                column_width = width / len(columns) * line.crop.shape[1] / resized_width  # in crop pixels
                words += self._decode(columns, line, column_width)
        return words

    def _decode(self, columns: np.ndarray, line: _Line, column_width: float) -> list[tuple[Word, tuple[int, int]]]:
        """Greedy CTC: repeats merged, blanks dropped; words split at the spaces it reads and at the gaps in the
        ink as wide as a space, which PP-OCR's recogniser often reads as nothing; each word boxed by its columns."""
        best, confidence = columns.argmax(axis=1), columns.max(axis=1)
        space = len(self._alphabet) - 1
        characters = [t for t in range(len(best)) if best[t] != 0 and (t == 0 or best[t] != best[t - 1])]
        gaps, height = _inkless_runs(line.crop)
        at = lambda t: (t + 0.5) * column_width  # a column's centre in the crop
        words, current = [], []
        for t in characters + [None]:  # None: the end of the line ends the last word
            ends_word = t is None or best[t] == space or (current and _spaced(
                gaps, height, at(current[-1]), at(t), self._alphabet[best[current[-1]]] + self._alphabet[best[t]]))
            if ends_word and current:
                x0 = line.x0 + current[0] * column_width * line.x_scale
                x1 = line.x0 + (current[-1] + 1) * column_width * line.x_scale
                # NFKC: the recogniser, trained on Chinese too, often writes full-width forms ("：", "）")
                text = unicodedata.normalize("NFKC", "".join(self._alphabet[best[s]] for s in current))
                score = 100.0 * float(np.mean(confidence[current]))
                box = (int(x0), line.rows[0], int(math.ceil(x1)), line.rows[1])
                words.append((Word(text, round(score, 2), box), line.rows))
                current = []
            if t is not None and best[t] != space:
                current.append(t)
        return words


def _spaced(gaps: np.ndarray, height: float, before: float, after: float, characters: str) -> bool:
    """Whether the ink between two characters, whose CTC columns lie at x = `before` and `after` in the crop,
    has a space: one of the inkless runs `gaps` ((start, stop) rows) spans at least SPACE_WIDTH ink `height`s
    of the stretch between them, NARROW_FACTOR times more for each narrow glyph of the two (a monospaced font
    pads those with blank). A character after a space often fires in the space's columns: then only the part
    of the run after the previous character counts."""
    if not gaps.size:
        return False
    needed = SPACE_WIDTH * height * NARROW_FACTOR ** sum(c in NARROW for c in characters)
    return float((np.minimum(gaps[:, 1], after) - np.maximum(gaps[:, 0], before)).max()) >= needed


def _inkless_runs(crop: np.ndarray) -> tuple[np.ndarray, int]:
    """The runs of the crop's columns without ink, as (start, stop) rows in pixels, and the height of its ink
    (ascenders to descenders)."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    _, ink = cv2.threshold(cv2.absdiff(gray, np.full_like(gray, paper_grey(gray))), 0, 1,
                           cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    empty = ~ink.any(axis=0).astype(bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], empty.astype(np.int8), [0]])))
    rows = np.flatnonzero(ink.any(axis=1))
    return edges.reshape(-1, 2).astype(np.float32), int(rows[-1] - rows[0] + 1) if rows.size else gray.shape[0]


def _mean_inside(probability: np.ndarray, contour: np.ndarray) -> float:
    """DB's "fast" box score: the mean probability inside the contour's bounding box, on the contour's polygon."""
    x, y, w, h = cv2.boundingRect(contour)
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [contour.reshape(-1, 2) - [x, y]], 1)
    return float(cv2.mean(probability[y:y + h, x:x + w], inside)[0])


def _crop(image: np.ndarray, corners: np.ndarray) -> _Line | None:
    """The box's pixels, straightened (a rotated box is warped upright); None for a box of under a pixel."""
    corners = _clockwise_from_top_left(corners)
    width = int(round(max(np.linalg.norm(corners[0] - corners[1]), np.linalg.norm(corners[2] - corners[3]))))
    height = int(round(max(np.linalg.norm(corners[0] - corners[3]), np.linalg.norm(corners[1] - corners[2]))))
    if width < 1 or height < 1:
        return None
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    crop = cv2.warpPerspective(image, cv2.getPerspectiveTransform(corners.astype(np.float32), target), (width, height),
                               borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    left, right = float(corners[:, 0].min()), float(corners[:, 0].max())
    rows = (int(corners[:, 1].min()), int(math.ceil(corners[:, 1].max())))
    return _Line(crop, left, (right - left) / width, rows)


def _clockwise_from_top_left(corners: np.ndarray) -> np.ndarray:
    by_x = corners[np.argsort(corners[:, 0])]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1])]
    top_right, bottom_right = right[np.argsort(right[:, 1])]
    return np.array([top_left, top_right, bottom_right, bottom_left])


def _rows(words: list[tuple[Word, tuple[int, int]]]) -> list[list[Word]]:
    """Words in reading order, in lines: boxes whose rows overlap by half the shorter one's height share a line
    (a receipt's price, detected apart from its item, is on the item's line)."""
    rows: list[tuple[tuple[int, int], list[Word]]] = []
    for word, (y0, y1) in sorted(words, key=lambda item: ((item[1][0] + item[1][1]) / 2, item[0].box[0])):
        for k, ((r0, r1), members) in enumerate(rows):
            if min(y1, r1) - max(y0, r0) > min(y1 - y0, r1 - r0) / 2:
                members.append(word)
                rows[k] = ((min(r0, y0), max(r1, y1)), members)
                break
        else:
            rows.append(((y0, y1), [word]))
    return [sorted(members, key=lambda w: w.box[0]) for _, members in rows]
