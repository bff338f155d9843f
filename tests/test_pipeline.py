"""The pipeline's reading: restored, or the more confident of the restored and the input, word by word."""

import shutil

import numpy as np
import pytest

from ocr_restore.pipeline import Pipeline

from .conftest import render_line, render_lines

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")


def test_a_restoration_that_erases_readable_text_does_not_cost_the_reading():
    # a mask over a word nothing covers: Telea smears it away, but the input still reads it
    image = render_lines("Partial convolution", "Receipt total 9.99")
    mask = np.zeros(image.shape[:2], bool)
    half = image.shape[0] // 2
    mask[half:, int(0.55 * image.shape[1]):] = True
    restored_only = Pipeline("classical", "telea", reading="restored")(image, mask)
    confident = Pipeline("classical", "telea", reading="confident")(image, mask)
    assert "9.99" not in restored_only.text and restored_only.words_from_input == 0
    assert restored_only.input_text is None  # the input was not read
    assert confident.text.split("\n")[-1] == "Receipt total 9.99"
    assert confident.words_from_input >= 1 and confident.input_text == confident.text
    assert "Partial convolution" in confident.text


def test_without_holes_the_image_is_read_once(monkeypatch):
    import ocr_restore.ocr

    read, recognise = [], ocr_restore.ocr.recognise
    monkeypatch.setattr(ocr_restore.ocr, "recognise", lambda image, *args, **kwargs: read.append(image) or recognise(image, *args, **kwargs))
    image = render_line("Partial convolution")
    result = Pipeline("classical", "telea")(image, np.zeros(image.shape[:2], bool), transcript="Partial convolution")
    assert len(read) == 1 and result.input_text == result.text == "Partial convolution"
    assert result.accuracy["before"] == result.accuracy["after"]


def test_an_unknown_reading_is_refused():
    with pytest.raises(ValueError, match="unknown reading 'best'"):
        Pipeline("classical", "telea", reading="best")


def test_words_away_from_the_holes_read_as_tesseract_alone_reads_them():
    from ocr_restore.ocr import recognise

    image = render_lines("Partial convolution", "Receipt total 9.99")
    mask = np.zeros(image.shape[:2], bool)
    mask[image.shape[0] // 2 + 8:image.shape[0] // 2 + 20, int(0.8 * image.shape[1]):] = True  # over "9.99" only
    result = Pipeline("classical", "telea")(image, mask)
    alone = recognise(image)

    def away(words):
        return [(w.text, w.box) for w in words if not mask[w.box[1]:w.box[3], w.box[0]:w.box[2]].any()]

    assert away(result.words) == away(alone.words) and len(away(alone.words)) >= 4


def test_each_word_says_where_it_was_read_and_how_much_of_it_was_hidden():
    clear, covered = render_line("Receipt total"), render_line("9.99 paid")
    image = np.concatenate([clear, covered], axis=1)  # the same height: no descenders
    mask = np.zeros(image.shape[:2], bool)
    mask[covered.shape[0] // 2 - 3:covered.shape[0] // 2 + 3, clear.shape[1]:] = True  # a stroke over "9.99 paid"
    image[mask] = (200, 30, 30)
    for reading in ("confident", "restored"):
        words = Pipeline("classical", "telea", reading=reading)(image, mask).words
        for word in words:
            x0, y0, x1, y1 = word.box
            assert word.hidden == pytest.approx(mask[y0:y1, x0:x1].mean(), abs=1e-4)
        clear = [w for w in words if w.hidden == 0]
        assert [w.text for w in clear] == ["Receipt", "total"]
        # away from the holes a word is the input's as Tesseract alone reads it; the restored reading's otherwise
        assert {w.source for w in clear} == {"input" if reading == "confident" else "restored"}
        assert {w.source for w in words if w.hidden > 0} <= {"input", "restored"}


def test_without_holes_every_word_is_the_inputs():
    image = render_line("Nothing covers this line")
    words = Pipeline("classical", "telea")(image, np.zeros(image.shape[:2], bool)).words
    assert words and all(w.source == "input" and w.hidden == 0 for w in words)
