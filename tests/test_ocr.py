"""Real Tesseract on rendered text (CI installs it; skipped only where it is really absent)."""

import shutil

import numpy as np
import pytest

from ocr_restore.errors import MissingDependencyError
from ocr_restore.metrics import score
from ocr_restore.ocr import check_tesseract, recognise

from .conftest import LINE, render_line

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")


def test_reads_a_rendered_line(line_image):
    result = recognise(line_image)
    assert result.psm == 7
    assert score(LINE, result.text).cer < 0.05
    assert [w.text for w in result.words][:2] == ["The", "quick"]


def test_word_boxes_are_in_input_pixels(line_image):
    result = recognise(line_image)
    h, w = line_image.shape[:2]
    for word in result.words:
        x0, y0, x1, y1 = word.box
        assert -2 <= x0 < x1 <= w + 2 and -2 <= y0 < y1 <= h + 2
    first = result.words[0].box
    assert first[0] < w / 4  # "The" is at the left


def test_small_text_is_upscaled_and_still_read():
    small = render_line("Hello world", size=11)
    assert score("Hello world", recognise(small).text).cer < 0.1


def test_blank_image_gives_empty_text():
    assert recognise(np.full((40, 200, 3), 255, np.uint8)).text == ""


def test_missing_language_data_is_a_clear_error():
    with pytest.raises(MissingDependencyError, match="tesseract-ocr-xyz"):
        check_tesseract("eng+xyz")
