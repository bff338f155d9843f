"""The corpus gives real prose with numbers, receipt lines and scene words, all printable ASCII."""

import numpy as np
import pytest

from ocr_restore.data import corpus
from ocr_restore.errors import MissingDependencyError


def test_prose_is_clean_ascii_sentences():
    prose = corpus.prose()
    assert len(prose) > 1000
    for text in prose[::97]:
        assert text.isascii() and text.isprintable() and "\n" not in text
        assert "  " not in text and "\x08" not in text
    assert not any(line.lstrip().startswith("--") for line in prose)


def test_paragraph_mixes_words_digits_and_punctuation():
    rng = np.random.default_rng(0)
    text = " ".join(corpus.paragraph(rng, 2000))
    letters = sum(c.isalpha() for c in text) / len(text)
    digits = sum(c.isdigit() for c in text) / len(text)
    punctuation = sum(c in ".,;:!?'\"-()$%/" for c in text) / len(text)
    assert letters > 0.6 and 0.005 < digits < 0.1 and punctuation > 0.02


def test_receipt_lines_and_scene_words():
    rng = np.random.default_rng(1)
    lines = [line for _ in range(50) for line in corpus.receipt_lines(rng, 6)]
    assert any(left.upper().startswith("TOTAL") for left, _ in lines)
    rights = [right for _, right in lines if right]
    amounts = [r for r in rights if r.lstrip("-").replace(".", "", 1).isdigit() and r[-3] == "."]
    assert len(amounts) > 0.7 * len(rights)
    assert any(left.isupper() for left, _ in lines) and any(left.istitle() for left, _ in lines)
    words = [corpus.scene_word(rng) for _ in range(300)]
    assert all(w.strip() and w.isascii() and any(c.isalnum() for c in w) for w in words)
    assert any(w.isupper() for w in words) and any(w.islower() for w in words) and any(w.istitle() for w in words)


def test_missing_corpus_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus, "FORTUNE_DIR", tmp_path)
    corpus.prose.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match="apt-get install fortunes-min"):
            corpus.prose()
    finally:
        corpus.prose.cache_clear()
