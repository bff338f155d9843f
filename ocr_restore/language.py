"""The language prior: the likeliest word where the mask hides some of a word's letters and the reading is unsure.

No pixel shows a letter an occluder wholly hid; only a prior on language can bring it back. A word of
the reading may change only when
- its box is partly under the mask and its confidence is below the OCR engine's `prior_gate` (the evidence
  is weak; Tesseract's is 70, and PP-OCR's 0 turns the prior off for it);
- it is not a word of the lexicon already;
- it is a word: letters, with punctuation around them, and any other mark only where the mask hides it (a
  misread letter). A word with a digit is a number, a price or a code, and a lexicon knows nothing of
  "37.08": it is left as read;
- a word of its line is whole, to measure the width of a glyph by. A lone word (a scene word's crop) is left
  as read: on the tuning scene words, where most are names and brands, every setting cost accuracy;
- the line is in the lexicon's language: at least half of its whole words are words of the lexicon.

Its candidates are its readings (the merged one, and the restored image's and the input's that overlap
it) and the words of an English frequency lexicon (wordfreq's, less what the system's word list lacks)
that differ from a reading only at letters under the mask: substituted, dropped, or inserted beside them. Each is scored by
- EasyOCR's English CRNN on the restored crop: the CTC log-likelihood of the candidate (case folded), with
  each column's class probabilities mixed with uniform ones in the share the mask hides: how well it
  agrees with the ink there is to see, for the filling of a hole is no evidence of its letters;
- the box's width in glyphs: how many characters the line's whole words put in that width, against the
  candidate's length (a Gaussian of LENGTH_SPREAD glyphs per glyph);
- PRIOR_WEIGHT times its log-probability among the lexicon's words of its length. Given the length, so
  that the length term alone says how many letters are hidden: short words are the most frequent.
The best is kept if it is a word of the lexicon. A word that changes has `source="language"`, and its
confidence is the best candidate's posterior among them.
"""

import functools
import math
import string
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Callable

import numpy as np
import torch
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from .data.corpus import WORDS_FILE
from .errors import MissingDependencyError, ModelError
from .nn.recognizer import CRNN, load_recognizer, log_likelihoods, read_box
from .ocr import OcrResult, Word, same_word

__all__ = ["LanguagePrior", "INSTALL_HINT", "pretrained_recognizer", "known_letters"]

INSTALL_HINT = "pip install 'ocr-restore[language]'"
LEXICON_SIZE = 100_000  # wordfreq's most frequent English words; the alphabetic ones in WORDS_FILE are kept
# Chosen on the seed-1100 tuning sets (see docs/experiments.md, "Language prior"):
PRIOR_WEIGHT = 0.5  # nats of CTC log-likelihood per nat of lexicon log-probability
HIDDEN_LETTER = 0.3  # a letter is hidden when this share of its cell in the word's box is under the mask
MAX_EDITS = 3  # letters a candidate may change: at most this many, and no more than the hidden letters
OUT_OF_LEXICON = math.log(1e-6)  # a reading the lexicon lacks: as rare as 1 word in a million of its length
MIN_LETTERS = 2
# shorter words are what junk spells by chance ("a", "in", "as"): counting them too, the layout rule
# (`known_letters`) read 109 clean tuning pages at CER 0.1041, not 0.0647 (docs/experiments.md)
KNOWN_MIN_LETTERS = 3
LEXICON_SHARE = 0.5  # of a line's whole words that must be the lexicon's for the prior to change any of its words
LENGTH_SPREAD = 0.06  # the standard deviation of a box's width in glyphs, per glyph (at least MIN_SPREAD)
MIN_SPREAD = 0.5
_PUNCTUATION = string.punctuation + "\u2018\u2019\u201c\u201d"
_APOSTROPHES = "'\u2019"


@dataclass(frozen=True)
class _Parts:
    """A word as punctuation before, the letters, punctuation after."""

    prefix: str
    core: str
    suffix: str

    @classmethod
    def of(cls, text: str) -> "_Parts | None":
        """None for a word with a digit, with fewer than MIN_LETTERS letters, or with an apostrophe inside: a
        contraction or a possessive (I'll, Tsar's) is a word the lexicon does not list."""
        core = text.strip(_PUNCTUATION)
        if any(c.isdigit() or c in _APOSTROPHES for c in core) or sum(c.isalpha() for c in core) < MIN_LETTERS:
            return None
        start = text.index(core)
        return cls(text[:start], core, text[start + len(core):])


def _with_case(word: str, like: str) -> str:
    """`word` in the case pattern of `like`: all capitals, a capital first, or lower case."""
    if like.isupper():
        return word.upper()
    return word.capitalize() if like[0].isupper() else word.lower()


def _hidden_letters(word: Word, parts: _Parts, mask: np.ndarray) -> list[bool]:
    """For each letter of `parts.core`, whether HIDDEN_LETTER of its cell is under the mask; the cells split the
    box evenly between the word's characters."""
    x0, y0, x1, y1 = (max(0, v) for v in word.box)
    under = mask[y0:y1, x0:x1]
    if under.size == 0:
        return [False] * len(parts.core)
    columns = under.mean(axis=0)
    edges = np.linspace(0, columns.size, len(word.text) + 1)
    start = len(parts.prefix)
    return [bool(columns[int(edges[i]):max(int(edges[i]) + 1, int(edges[i + 1]))].mean() >= HIDDEN_LETTER)
            for i in range(start, start + len(parts.core))]


def _fits(reading: str, candidate: str, hidden: list[bool]) -> bool:
    """Whether `candidate` differs from `reading` only at hidden letters (or by letters inserted beside one)."""
    for op in Levenshtein.editops(reading, candidate):
        at = op.src_pos
        if op.tag == "insert":
            if not ((at > 0 and hidden[at - 1]) or (at < len(hidden) and hidden[at])):
                return False
        elif not hidden[at]:
            return False
    return True


def _glyph_width(line: list[Word]) -> float | None:
    """The median width per character of the line's words that the mask leaves whole; None if none is."""
    widths = [(w.box[2] - w.box[0]) / len(w.text) for w in line if w.hidden == 0 and len(w.text) >= MIN_LETTERS]
    return float(np.median(widths)) if widths else None


@functools.cache
def _lexicon() -> tuple[dict[int, list[str]], dict[str, float], str]:
    """wordfreq's English words by length; the natural log of each one's probability among the words of its
    length; wordfreq's version."""
    try:
        import wordfreq
    except ModuleNotFoundError as e:
        raise MissingDependencyError(f"the language prior needs wordfreq: install it with `{INSTALL_HINT}`") from e
    frequencies = wordfreq.get_frequency_dict("en", wordlist="best")
    # wordfreq's list, drawn from the web, holds names and foreign words; the system's word list keeps the English
    if not WORDS_FILE.is_file():
        raise MissingDependencyError(f"{WORDS_FILE}: not found; install it with `apt-get install wamerican`")
    english = set(WORDS_FILE.read_text(encoding="utf-8").lower().split())
    by_length: dict[int, list[str]] = {}
    for word in wordfreq.top_n_list("en", LEXICON_SIZE, wordlist="best"):
        if word.isascii() and word.isalpha() and word in english:
            by_length.setdefault(len(word), []).append(word)
    log_p = {}
    for words in by_length.values():
        total = sum(frequencies[w] for w in words)
        log_p.update((w, math.log(frequencies[w] / total)) for w in words)
    try:
        release = version("wordfreq")
    except PackageNotFoundError:
        release = "unknown"
    return by_length, log_p, release


def known_letters() -> Callable[[list[Word]], int]:
    """The count of the letters of words that spell a word of the lexicon of at least KNOWN_MIN_LETTERS letters, case
    folded (a word as `_Parts` takes it). It loads the lexicon, so a missing one is a MissingDependencyError here,
    not while reading."""
    log_p = _lexicon()[1]

    def count(words: list[Word]) -> int:
        return sum(len(parts.core) for w in words if (parts := _Parts.of(w.text)) is not None
                   and len(parts.core) >= KNOWN_MIN_LETTERS and parts.core.lower() in log_p)

    return count


def pretrained_recognizer(needed_by: str) -> CRNN:
    """EasyOCR's English CRNN, which `needed_by` names; MissingDependencyError says how to install it."""
    try:
        return load_recognizer()
    except ModelError as e:
        raise MissingDependencyError(f"{needed_by} needs EasyOCR's English recogniser ({e}); "
                                     f"install it with `{INSTALL_HINT}`") from None


class LanguagePrior:
    """Applied to a reading with the restored image and the mask it was read with (`__call__`)."""

    def __init__(self, recognizer: CRNN | None = None):
        """`recognizer`: the CRNN, if the caller has loaded it already."""
        self.by_length, self.log_p, self.release = _lexicon()
        self.recognizer = recognizer or pretrained_recognizer("the language prior")

    def describe(self) -> str:
        return (f"wordfreq {self.release} en ({sum(map(len, self.by_length.values()))} words), "
                f"EasyOCR english_g2 CTC, weight {PRIOR_WEIGHT:g}")

    def __call__(self, reading: OcrResult, restored: np.ndarray, mask: np.ndarray, gate: float,
                 alternatives: tuple[OcrResult | None, ...] = ()) -> OcrResult:
        """`reading` with each word read less sure than `gate` under the mask replaced by the best candidate,
        where that is another word; `alternatives`: other readings of the same image whose overlapping words
        are candidates too."""
        others = [w for r in alternatives if r is not None for w in r.words]
        lines = []
        for line in reading.lines():
            if all(word.confidence >= gate for word in line) or not self._in_lexicon_language(line):
                lines.append(line)
                continue
            glyph_width = _glyph_width(line)  # once a line: every weak word of it is measured by the same
            lines.append([self._choose(word, restored, mask, others, glyph_width) if word.confidence < gate else word
                          for word in line])
        return OcrResult.from_lines(lines, reading.psm)

    def _in_lexicon_language(self, line: list[Word]) -> bool:
        """Whether at least LEXICON_SHARE of the line's words that the mask leaves whole are words of the lexicon:
        a line of names, codes or another language (a Malay receipt's address) is no place to write English."""
        whole = [parts.core.lower() for w in line if w.hidden == 0 and (parts := _Parts.of(w.text)) is not None]
        return bool(whole) and sum(core in self.log_p for core in whole) >= LEXICON_SHARE * len(whole)

    def _choose(self, word: Word, restored: np.ndarray, mask: np.ndarray, others: list[Word],
                glyph_width: float | None) -> Word:
        parts = _Parts.of(word.text)
        # a word of the lexicon is not corrected, and the hidden span's width in glyphs needs a whole word to measure by
        if parts is None or word.hidden == 0 or parts.core.lower() in self.log_p or glyph_width is None:
            return word
        candidates = {parts.core.lower()}
        for reading in [word] + [w for w in others if same_word(w, word)]:
            reading_parts = _Parts.of(reading.text)
            if reading_parts is None:
                continue
            hidden = _hidden_letters(reading, reading_parts, mask)
            if not all(c.isascii() and c.isalpha() or h for c, h in zip(reading_parts.core, hidden)):
                if reading is word:  # a visible mark that is not a letter: an apostrophe, a hyphen, a code's slash
                    return word
                continue
            candidates.add(reading_parts.core.lower())
            candidates.update(self._neighbours(reading_parts.core.lower(), hidden))
        candidates = sorted(candidates)
        read = read_box(self.recognizer, restored, mask, word.box) if len(candidates) > 1 else None
        if read is None:
            return word
        logits, hidden_columns = read
        texts = [parts.prefix + c + parts.suffix for c in candidates]
        prior = torch.tensor([self.log_p.get(c, OUT_OF_LEXICON) for c in candidates])
        scores = log_likelihoods(logits, texts, fold_case=True, hidden=hidden_columns) + PRIOR_WEIGHT * prior
        glyphs = (word.box[2] - word.box[0]) / glyph_width
        spread = max(MIN_SPREAD, LENGTH_SPREAD * glyphs)
        scores -= 0.5 * ((torch.tensor([len(t) for t in texts]) - glyphs) / spread) ** 2
        best = int(scores.argmax())
        # another reading that wins, but is no word, is no better evidence than this one
        if candidates[best] not in self.log_p or not torch.isfinite(scores[best]):
            return word
        posterior = float(torch.softmax(scores, dim=0)[best])
        text = parts.prefix + _with_case(candidates[best], parts.core) + parts.suffix
        return replace(word, text=text, confidence=round(100 * posterior, 2), source="language")

    def _neighbours(self, reading: str, hidden: list[bool]) -> list[str]:
        """Lexicon words that differ from `reading` only at its hidden letters."""
        edits = min(MAX_EDITS, sum(hidden))
        found = []
        for length in range(max(MIN_LETTERS, len(reading) - edits), len(reading) + edits + 1):
            words = self.by_length.get(length, [])
            for candidate, _, _ in process.extract(reading, words, scorer=Levenshtein.distance,
                                                   score_cutoff=edits, limit=None):
                if _fits(reading, candidate, hidden):
                    found.append(candidate)
        return found
