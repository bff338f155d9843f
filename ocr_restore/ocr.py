"""The OCR stage: the only module that runs Tesseract, and the interface every OCR engine has (`Engine`).

Tesseract reads best with an x-height of 20-30 px and a margin of background
around the text, so small crops are upscaled and every image is padded with its
own border colour before it is handed over. It is handed over in grey levels:
given colour, Tesseract's Otsu binarisation takes one threshold per channel, and
coloured text on a coloured ground falls apart. On clean tuning images (seed
1100) luminance took the CER of 150 scene words from 0.348 to 0.188, of 80
receipts from 0.183 to 0.171 and of 80 documents from 0.0755 to 0.0752.

Restoring can also cost a reading: a fill smeared over a letter that an
occluder barely touched reads worse than the letter did, or Tesseract drops a
word it read in the input. `more_confident()` merges the two readings word by
word: where both read a word (their boxes overlap), the restored one unless the
input's is clearly more confident; a word only one of them read is kept.
"""

import contextlib
import functools
import os
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

import cv2
import numpy as np
import pytesseract

from .errors import MissingDependencyError, OcrError
from .textscale import WORD_CROP, estimate_text_height

__all__ = ["Word", "OcrResult", "Engine", "Tesseract", "build_engine", "check_tesseract", "recognise", "recognise_all",
           "more_confident", "one_line_crop", "paper_grey", "same_word", "tesseract_version", "words_extent"]

MIN_EM = 40  # em size (px) below which images are upscaled: Tesseract's LSTM wants x-height >= ~20 px
MAX_UPSCALE = 6.0
MIN_CONTRAST = 24  # grey levels between dark and light: less is a blank image
BLOCK_HEIGHT_EM = 30  # images up to this many ems high are crops of one block of text, not pages
# Tesseract confidence points by which the input's words must beat the restored ones to be kept. Chosen on
# the seed-1100 tuning sets (detected masks, PConv run 5, word by word; CER with margins 0 / 5 / 10): 150
# documents 0.2667 / 0.2616 / 0.2611, 200 receipt lines 0.2207 / 0.2198 / 0.2229, 200 IC03 scene words
# 0.382 / 0.433 / 0.478. Line by line at 5 (before 2026-11-24): 0.2743, 0.2207, 0.432.
CONFIDENCE_MARGIN = 5.0
# An image under this many ems tall is a crop of one line, which the judge may read whole (`more_confident`).
# A 5-em block whose restoration read its two lines, and whose input read one junk word, went to the junk
# when the judge read both lines as one: 29 -> 74 errors (tuning doc 44). Crops 2.3 em tall were judged right.
ONE_LINE_EM = 3.0
# The share more lexicon letters a restored page must spell than the input's where the two are laid out differently
# (`more_confident`). Chosen on 109 tuning pages (docs/experiments.md, "Two layouts of a page, read again"; CER of the
# clean pages / the occluded ones at 0 / 2% / 5% / 10%): 0.0558 / 0.0346 / 0.0151 / 0.0138, 0.4166 / 0.4119 / 0.4224 /
# 0.4245: at 5% nine clean pages read as Tesseract alone reads them, for nine occluded ones read a little worse.
LAYOUT_MARGIN = 0.05
# The share of a page under the mask from which its restored layout is kept whatever the lexicon says: occluders
# that large broke the input's own layout (Tesseract read a page's columns across, its lines out of order), and the
# false alarms of clean pages stay under it. Chosen on the same 109 tuning pages (docs/experiments.md, "A page
# mostly masked keeps its restored layout"; CER of the occluded pages at none / 20% / 15% / 12%: 0.4224 / 0.4161 /
# 0.4133 / 0.4084, of the clean pages 0.0151 at each): 15%, for room above the largest false alarm, 11.7% of a page.
LAYOUT_MASK_SHARE = 0.15
# Confidence under which the language prior may change a word (language.LanguagePrior). Chosen on the seed-1100
# tuning sets with the prior's other settings (docs/experiments.md, "Language prior"; CER at 50 / 70 / 90): 60
# documents 0.2666 / 0.2660 / 0.2661, 100 receipt lines 0.1842 / 0.1842 / 0.1862.
LANGUAGE_GATE = 70.0
# seconds one reading may take before Tesseract is killed: an A4 page at 300 dpi reads in about 4 s on one
# core; a larger image gets proportionally more (a 600 Mpx page about 2.3 hours)
TIMEOUT = 120
A4_PIXELS = 2480 * 3508


@dataclass
class Word:
    text: str
    confidence: float  # 0-100, Tesseract's scale
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the input image's pixels
    line: int = 0  # index of its line in OcrResult.text
    source: str = "input"  # read on the unrestored input, on the "restored" image, or chosen by the "language" prior
    hidden: float = 0.0  # the share of its box under the mask

    def read_on(self, source: str, mask: np.ndarray) -> "Word":
        """This word, read on `source`, with the share of its box that `mask` (the holes) covers."""
        x0, y0, x1, y1 = (max(0, v) for v in self.box)
        under = mask[y0:y1, x0:x1]
        return replace(self, source=source, hidden=round(float(under.mean()), 4) if under.size else 0.0)


@dataclass
class OcrResult:
    text: str  # lines joined by '\n', words by ' '
    words: list[Word] = field(default_factory=list)
    psm: int = 3  # Tesseract's page segmentation mode, or the layout another engine chose in its terms

    @classmethod
    def from_lines(cls, lines: list[list[Word]], psm: int) -> "OcrResult":
        """The reading of these lines of words, each word numbered with its line."""
        words = [replace(w, line=i) for i, line in enumerate(lines) for w in line]
        return cls("\n".join(" ".join(w.text for w in line) for line in lines), words, psm)

    def read_on(self, source: str, mask: np.ndarray) -> "OcrResult":
        """This reading with each word's provenance (`Word.read_on`)."""
        return replace(self, words=[w.read_on(source, mask) for w in self.words])

    def lines(self) -> list[list[Word]]:
        """The words of each line of `text`, in order."""
        lines = [[] for _ in self.text.split("\n")] if self.text else []
        for word in self.words:
            lines[word.line].append(word)
        return lines


def _confidence(words: list[Word]) -> float:
    """Mean confidence per character (Tesseract's -1 for "none" counts as 0); 0 without words."""
    chars = sum(len(w.text) for w in words)
    return sum(max(w.confidence, 0.0) * len(w.text) for w in words) / chars if chars else 0.0


def _share_rows(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return min(a[3], b[3]) > max(a[1], b[1])


def words_extent(words: list[Word]) -> tuple[int, int, int, int]:
    """The box around all of `words` (not empty)."""
    return (min(w.box[0] for w in words), min(w.box[1] for w in words),
            max(w.box[2] for w in words), max(w.box[3] for w in words))


def same_word(a: Word, b: Word) -> bool:
    """Boxes that share rows and at least half the width of the narrower: one word, read twice."""
    overlap = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    narrower = min(a.box[2] - a.box[0], b.box[2] - b.box[0])
    return _share_rows(a.box, b.box) and overlap > narrower / 2


def _word_groups(ours: list[Word], theirs: list[Word]) -> list[tuple[list[Word], list[Word]]]:
    """Two readings of one line, in groups of words linked by overlapping boxes (one word may be two in
    the other reading): (our words, their words) per group, either side possibly empty."""
    group_of = list(range(len(ours) + len(theirs)))  # union-find over ours, then theirs

    def root(i: int) -> int:
        while group_of[i] != i:
            i = group_of[i]
        return i

    for i, a in enumerate(ours):
        for j, b in enumerate(theirs, len(ours)):
            if same_word(a, b):
                group_of[root(j)] = root(i)
    groups: dict[int, tuple[list[Word], list[Word]]] = {}
    for i, word in enumerate(ours + theirs):
        groups.setdefault(root(i), ([], []))[i >= len(ours)].append(word)
    return list(groups.values())


def _paired_lines(ours: list[list[Word]], theirs: list[list[Word]]) -> list[tuple[list[Word], list[Word]]]:
    """Two readings' lines paired by where they lie, not by their order: a reading with one line more (junk
    read over a restored stroke) would shift every pair after it. Lines whose extents overlap pair, the highest
    intersection over union first (a junk word's tall box can reach into the next line), each at most once; a
    line without a partner pairs with []. In `ours`' order, each of `theirs`' lone lines after the line that
    the line before it pairs with. Readings that share no line pair by order."""
    def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a, b
        both = max(0, min(ax1, bx1) - max(ax0, bx0)) * max(0, min(ay1, by1) - max(ay0, by0))
        return both / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - both or 1)

    # each extent once: a page's lines are paired all against all
    our_extents, their_extents = ([(i, words_extent(line)) for i, line in enumerate(lines) if line]
                                  for lines in (ours, theirs))
    overlaps = sorted(((iou(a, b), i, j) for i, a in our_extents for j, b in their_extents), reverse=True)
    partner_of_ours, partner_of_theirs = {}, {}
    for overlap, i, j in overlaps:
        if overlap > 0 and i not in partner_of_ours and j not in partner_of_theirs:
            partner_of_ours[i], partner_of_theirs[j] = j, i
    if not partner_of_ours:  # no line in common: nothing places one reading's lines among the other's
        return list(zip(ours, theirs))
    lone_after: dict[int, list[list[Word]]] = {}  # ours' index (-1: before the first) -> theirs' lone lines
    after = -1
    for j, b in enumerate(theirs):
        if j in partner_of_theirs:
            after = partner_of_theirs[j]
        else:
            lone_after.setdefault(after, []).append(b)
    pairs = [([], b) for b in lone_after.get(-1, [])]
    for i, a in enumerate(ours):
        pairs.append((a, theirs[partner_of_ours[i]] if i in partner_of_ours else []))
        pairs += [([], b) for b in lone_after.get(i, [])]
    return pairs


def recognise_all(images: list[np.ndarray], lang: str = "eng", psm: int | None = None, processes: int = 1) -> list[OcrResult]:
    """`recognise` on each image, in order, with up to `processes` Tesseracts running side by side.

    Each Tesseract runs on one OpenMP thread, so the confident reading's two readings take the
    time of one on two cores. The thread limit is set once around all of them: set and unset by
    each call, it could be unset while another call starts its Tesseract.
    """
    with _one_openmp_thread(), ThreadPoolExecutor(max(1, min(processes, len(images)))) as pool:
        return list(pool.map(lambda image: recognise(image, lang, psm), images))


def _touches(box: tuple[int, int, int, int], mask: np.ndarray) -> bool:
    x0, y0, x1, y1 = (max(0, v) for v in box)
    return bool(mask[y0:y1, x0:x1].any())


def one_line_crop(height: int, em: float | None) -> bool:
    """Whether an image `height` px tall, of text `em` px tall, is a crop of one line (under ONE_LINE_EM ems);
    without a measured em (None) it is a scene word or a crop too small to measure: one line."""
    return em is None or height < ONE_LINE_EM * em


def more_confident(restored: OcrResult, original: OcrResult, margin: float = CONFIDENCE_MARGIN,
                   mask: np.ndarray | None = None,
                   judge: Callable[[list[Word], list[Word]], bool | None] | None = None,
                   keep_new_words: bool = True, one_line: bool = True, line_room: float = float("inf"),
                   known_letters: Callable[[list[Word]], int] | None = None) -> tuple[OcrResult, int]:
    """Word by word, `restored` unless `original` reads the word with more than `margin` points more
    confidence; a word only one reading has is kept.

    With `mask` (bool HxW, the holes), a word whose box touches no hole, in either reading, is
    `original`'s as it stands, or dropped if only `restored` has it: away from the holes the
    restored image is the input, and there Tesseract alone is the reading to keep.
    With `judge`, a second opinion (`judge.InkJudge`), its word decides between the two readings of words a
    hole touches: True keeps `original`'s; where it has none (None), the confidence decides.
    Without `keep_new_words`, a word under a hole that only `restored` reads is dropped.
    The readings' lines are paired by where they lie (`_paired_lines`); a line only
    one reading has, and lines of readings that share none, are compared whole.
    Readings with different numbers of lines are compared whole: by the judge
    where the image is `one_line` (`one_line_crop`) and one of them reads at
    most one line (reading nothing is an answer it can refute); where both read
    several lines of an image taller than one, `restored` where the mask covers
    LAYOUT_MASK_SHARE of the image or more; else with `known_letters` (how many letters
    of words a lexicon holds a reading spells), by those, `original` unless `restored`
    spells over LAYOUT_MARGIN more; else by confidence. Where `original` reads at most
    one line, a `restored` reading of several, more than the image has height for
    (`line_room`, its height in ems), is Tesseract reading a texture as text, the
    texture the em was measured on: `original` is kept. (A page's columns set its
    lines side by side.)
    Returns the chosen reading and how many of its words came from `original`.
    """
    untouched = (lambda words: mask is not None and not any(_touches(w.box, mask) for w in words))
    ours, theirs = restored.lines(), original.lines()

    def prefer_original(mine: list[Word], other: list[Word], judged: bool = True, whole_page: bool = False) -> bool:
        if untouched(mine + other) or not mine or not (other or keep_new_words):
            return True
        if whole_page and mask is not None and mask.mean() >= LAYOUT_MASK_SHARE:
            return False
        if whole_page and known_letters is not None:
            # Tesseract is sure of the junk it reads where false alarms were painted over a page's text
            return known_letters(mine) <= known_letters(other) * (1 + LAYOUT_MARGIN)
        opinion = judge(mine, other) if judge is not None and judged else None
        return _confidence(other) > _confidence(mine) + margin if opinion is None else opinion

    if len(ours) != len(theirs):
        if len(theirs) <= 1 < len(ours) and len(ours) > line_room:
            return original, len(original.words)
        # the judge reads a box as one line: the two real lines of a block, read whole, it scores as junk
        fewer = min(len(ours), len(theirs))
        if prefer_original(restored.words, original.words, judged=one_line and fewer <= 1,
                           whole_page=not one_line and fewer > 1):
            return original, len(original.words)
        return restored, 0
    chosen, from_original = [], 0
    for a, b in _paired_lines(ours, theirs):
        line = []
        # a lone line, or lines of readings that share none, are compared whole
        same_line = a and b and _share_rows(words_extent(a), words_extent(b))
        for mine, other in _word_groups(a, b) if same_line else [(a, b)]:
            take = prefer_original(mine, other)
            line += other if take else mine
            from_original += len(other) if take else 0
        if line:
            chosen.append(sorted(line, key=lambda w: w.box[0]))
    return OcrResult.from_lines(chosen, restored.psm), from_original


_REINSTALL = "reinstall it with `apt-get install --reinstall tesseract-ocr tesseract-ocr-eng`"


@functools.cache
def tesseract_version() -> str:
    command = shutil.which(pytesseract.pytesseract.tesseract_cmd)
    if command is None:
        raise MissingDependencyError(
            "tesseract not found on PATH: install it with `apt-get install tesseract-ocr tesseract-ocr-eng` "
            "(or run `make setup`)"
        )
    try:
        return str(pytesseract.get_tesseract_version())
    # pytesseract raises SystemExit on a version it cannot parse: a broken install must not end the caller
    except (OSError, ValueError, subprocess.CalledProcessError, SystemExit) as e:
        said = " ".join(str(e).split()) or type(e).__name__  # its output may span lines
        raise MissingDependencyError(f"{command} --version failed ({said}): {_REINSTALL}") from None


@functools.cache
def check_tesseract(lang: str) -> None:
    """Raise MissingDependencyError unless Tesseract and every language in `lang` ('eng+deu') are installed."""
    tesseract_version()
    try:
        installed = set(pytesseract.get_languages(config=""))
    except (OSError, ValueError) as e:  # TesseractNotFoundError is an OSError: the command exited with an error
        raise MissingDependencyError(f"tesseract --list-langs failed ({e}): {_REINSTALL}") from None
    missing = [code for code in lang.split("+") if code not in installed]
    if missing:
        raise MissingDependencyError(
            f"Tesseract language data missing for {', '.join(missing)}: install "
            + " ".join(f"tesseract-ocr-{code}" for code in missing)
            + f" (installed: {', '.join(sorted(installed)) or 'none'})"
        )


def paper_grey(gray: np.ndarray) -> int:
    """The paper's grey level: the median of the image's border, where text seldom reaches."""
    return int(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))


def _prepare(image: np.ndarray, em: float | None) -> tuple[np.ndarray, float, int]:
    """Grey levels, small text upscaled, a border of the paper's grey; return the image, its scale and the padding."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = 1.0
    if em is not None and em < MIN_EM:
        scale = min(MIN_EM / em, MAX_UPSCALE)
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    border = paper_grey(gray)
    pad = int(max(10, 0.5 * (em or 0) * scale))
    return cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=border), scale, pad


@contextlib.contextmanager
def _one_openmp_thread():
    """OMP_THREAD_LIMIT=1 for the Tesseract started inside, unless the user (or `batch`) set a limit.

    Tesseract's nested OpenMP loops start far more threads than there are cores: on the 2-core
    machine an A4 page took 26 s unlimited and 3.7 s on one thread (tesseract-ocr/tesseract#3109);
    OCRmyPDF limits it the same way. Only for the call: set while torch loads, it would bind torch too.
    """
    if "OMP_THREAD_LIMIT" in os.environ:
        yield
        return
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        yield
    finally:
        del os.environ["OMP_THREAD_LIMIT"]


def _is_blank(image: np.ndarray) -> bool:
    """No two grey levels far apart once speckle noise is filtered out."""
    gray = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 3)
    return int(gray.max()) - int(gray.min()) < MIN_CONTRAST


def _auto_psm(image: np.ndarray, em: float | None) -> int:
    """7 for a single line, 6 (one block) for a crop of a few lines, 3 (automatic layout) for a page.

    A block crop read with 3 loses columns: a receipt's prices become a second
    block that Tesseract often drops.
    """
    height = image.shape[0]
    # with no text measured, a crop up to WORD_CROP is a word whose letters fill it (psm 3 reads such words as nothing)
    if (height < 2.2 * em) if em else (height <= WORD_CROP):
        return 7
    return 6 if em and height < BLOCK_HEIGHT_EM * em else 3


def _timeout(pixels: int) -> float:
    """TIMEOUT, and proportionally more for an image larger than an A4 page at 300 dpi."""
    return TIMEOUT * max(1.0, pixels / A4_PIXELS)


def recognise(image: np.ndarray, lang: str = "eng", psm: int | None = None, timeout: float | None = None) -> OcrResult:
    """OCR an RGB uint8 image: the text (lines joined by '\\n') and per-word boxes and confidences.
    The em is measured on the image itself, so that an image is read as Tesseract alone reads it.
    `timeout`: seconds, by default TIMEOUT for an A4 page and in proportion for a larger image.

    Tesseract's faults are OcrErrors: a crash, a hang past the timeout, output that is not its
    TSV; "Empty page" is the empty reading."""
    check_tesseract(lang)
    em = estimate_text_height(image)
    if em is None and _is_blank(image):  # Tesseract hallucinates letters on blank images
        return OcrResult("", [], psm or 3)
    psm = psm if psm is not None else _auto_psm(image, em)
    prepared, scale, pad = _prepare(image, em)
    timeout = timeout if timeout is not None else _timeout(prepared.size)
    try:
        with _one_openmp_thread():
            data = pytesseract.image_to_data(
                prepared, lang=lang, config=f"--psm {psm}", output_type=pytesseract.Output.DICT, timeout=timeout
            )
    except pytesseract.TesseractError as e:  # a RuntimeError too: caught before the timeout's
        if "Empty page" in str(e):
            return OcrResult("", [], psm)
        if e.status < 0:  # killed by a signal: a segfault, an abort, the OOM killer
            name = signal.Signals(-e.status).name if -e.status in signal.valid_signals() else f"signal {-e.status}"
            raise OcrError(f"Tesseract crashed ({name}) on a {prepared.shape[1]}x{prepared.shape[0]} image: "
                           f"{e.message or 'no message'}") from e
        raise OcrError(f"Tesseract failed (status {e.status}): {e.message}") from e
    except RuntimeError as e:  # pytesseract's timeout; it has killed the process
        raise OcrError(f"Tesseract timed out after {timeout:.0f} s on a {prepared.shape[1]}x{prepared.shape[0]} "
                       "image; crop the image, or raise ocr.TIMEOUT") from e
    except pytesseract.TesseractNotFoundError as e:  # removed since check_tesseract looked
        raise MissingDependencyError(f"tesseract is gone from PATH: {_REINSTALL}") from e
    except (OSError, ValueError) as e:  # no output file, or bytes that are not text
        raise OcrError(f"Tesseract's output could not be read ({type(e).__name__}: {e})") from e
    try:
        lines: dict[tuple[int, int, int], list[Word]] = {}  # in reading order
        for i, token in enumerate(data["text"]):
            token = token.strip()
            if not token:
                continue
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            x0 = (data["left"][i] - pad) / scale
            y0 = (data["top"][i] - pad) / scale
            box = (x0, y0, x0 + data["width"][i] / scale, y0 + data["height"][i] / scale)
            lines.setdefault(key, []).append(Word(token, float(data["conf"][i]), tuple(int(round(v)) for v in box)))
    except (KeyError, IndexError, TypeError, ValueError) as e:  # columns missing, or not numbers where numbers go
        raise OcrError(f"Tesseract's output is not the TSV it writes ({type(e).__name__}: {e}); "
                       f"is {shutil.which(pytesseract.pytesseract.tesseract_cmd)} Tesseract 4 or later?") from e
    return OcrResult.from_lines(list(lines.values()), psm)


class Engine(Protocol):
    """An OCR engine: reads RGB uint8 images into OcrResults with word boxes and 0-100 confidences."""

    name: str
    margin: float  # the confident reading's: points by which the input's word must be surer (negative: less sure)
    prior_gate: float  # the language prior may change a word read less sure than this (0: never)
    judged: bool  # whether the second opinion (judge.InkJudge) chooses between the readings under the mask
    keep_new_words: bool  # whether a word under the mask that only the restored image's reading has is kept

    def read_all(self, images: list[np.ndarray], processes: int = 1) -> list[OcrResult]:
        """Each image's reading, in order, using up to `processes` cores."""

    def describe(self, result: OcrResult) -> str:
        """The engine, its version and settings, as the `stages` of a result name them."""


@dataclass(frozen=True)
class Tesseract:
    """Tesseract behind the `Engine` interface: `recognise` with this language and page segmentation mode."""

    lang: str = "eng"
    psm: int | None = None
    name: str = field(default="tesseract", init=False)
    margin: float = field(default=CONFIDENCE_MARGIN, init=False)
    prior_gate: float = field(default=LANGUAGE_GATE, init=False)
    judged: bool = field(default=True, init=False)
    keep_new_words: bool = field(default=True, init=False)

    def __post_init__(self):
        check_tesseract(self.lang)

    def read_all(self, images: list[np.ndarray], processes: int = 1) -> list[OcrResult]:
        return recognise_all(images, self.lang, self.psm, processes)

    def describe(self, result: OcrResult) -> str:
        return f"tesseract {tesseract_version()} lang={self.lang} psm={result.psm}"


def build_engine(name: str, lang: str = "eng", psm: int | None = None, threads: int = 1) -> Engine:
    """The engine called `name` (choices.OCR_ENGINES); `threads` is what an engine that keeps a thread pool gets."""
    if name == "tesseract":
        return Tesseract(lang, psm)
    if name == "rapidocr":
        from .rapidocr import RapidOcr  # onnxruntime loads only when asked for

        if lang != "eng":
            raise ValueError(f"--lang {lang}: rapidocr reads with PP-OCRv4's one Chinese and Latin model; "
                             "--lang is for Tesseract")
        return RapidOcr(psm, threads)
    raise ValueError(f"unknown OCR engine {name!r}; choose one of tesseract, rapidocr")
