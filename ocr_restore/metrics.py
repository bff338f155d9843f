"""OCR accuracy: character and word error rates as normalised edit distances.

CER = Levenshtein(ref, hyp) / len(ref) over characters, WER the same over words,
and word accuracy the fraction of reference words that the alignment matches.
Whitespace is normalised first (any run of spaces and line breaks is one space),
so layout differences are not counted as errors. The distances are rapidfuzz's;
tests/test_metrics.py holds the textbook dynamic programmes they are checked against.
"""

import re
from dataclasses import dataclass

from rapidfuzz.distance import LCSseq, Levenshtein

__all__ = ["normalise", "edit_distance", "word_hits", "matched_words", "Score", "score"]


def normalise(text: str, ignore_case: bool = False, alnum_only: bool = False) -> str:
    """Collapse whitespace; optionally fold case and keep only letters and digits (scene-text scoring)."""
    if ignore_case:
        text = text.casefold()
    if alnum_only:
        text = re.sub(r"[^\w\s]|_", "", text)
    return " ".join(text.split())


def edit_distance(ref: list | str, hyp: list | str) -> int:
    """Levenshtein distance between two sequences (strings or token lists)."""
    return Levenshtein.distance(ref, hyp)


def word_hits(ref: list[str], hyp: list[str]) -> int:
    """Reference words matched exactly by an optimal alignment (the longest common subsequence)."""
    return LCSseq.similarity(ref, hyp)


def matched_words(reference: str, words: list[str], ignore_case: bool = False, alnum_only: bool = False) -> list[bool | None]:
    """For each word read, whether an optimal alignment (the longest common subsequence) matches it to a
    reference word, after the same normalisation as `score`; None for a word normalised away (punctuation)."""
    ref_words = normalise(reference, ignore_case, alnum_only).split()
    read = [normalise(word, ignore_case, alnum_only) for word in words]
    kept = [i for i, word in enumerate(read) if word]
    unmatched = {op.dest_pos for op in LCSseq.editops(ref_words, [read[i] for i in kept]) if op.tag == "insert"}
    matched: list[bool | None] = [None] * len(words)
    for position, i in enumerate(kept):
        matched[i] = position not in unmatched
    return matched


@dataclass
class Score:
    """Raw counts, so that scores add up over a set before the rates are taken (micro-averaging)."""

    char_errors: int = 0
    chars: int = 0
    word_errors: int = 0
    words: int = 0
    word_hits: int = 0

    def __add__(self, other: "Score") -> "Score":
        return Score(*(a + b for a, b in zip(vars(self).values(), vars(other).values())))

    @property
    def cer(self) -> float:
        return self.char_errors / self.chars if self.chars else float(self.char_errors > 0)

    @property
    def wer(self) -> float:
        return self.word_errors / self.words if self.words else float(self.word_errors > 0)

    @property
    def word_accuracy(self) -> float:
        return self.word_hits / self.words if self.words else 1.0


def score(reference: str, hypothesis: str, ignore_case: bool = False, alnum_only: bool = False) -> Score:
    """Compare an OCR hypothesis with the reference transcript."""
    ref = normalise(reference, ignore_case, alnum_only)
    hyp = normalise(hypothesis, ignore_case, alnum_only)
    ref_words, hyp_words = ref.split(), hyp.split()
    return Score(
        char_errors=edit_distance(ref, hyp),
        chars=len(ref),
        word_errors=edit_distance(ref_words, hyp_words),
        words=len(ref_words),
        word_hits=word_hits(ref_words, hyp_words),
    )
