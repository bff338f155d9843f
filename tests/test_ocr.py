"""Real Tesseract on rendered text (CI installs it; skipped only where it is really absent)."""

import shutil

import numpy as np
import pytest

from ocr_restore.errors import MissingDependencyError
from ocr_restore.metrics import Score, score
from ocr_restore.ocr import OcrResult, Word, check_tesseract, more_confident, recognise, recognise_all

from .conftest import LINE, render_line, render_lines, speckled_word

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")


def test_reads_a_rendered_line(line_image):
    result = recognise(line_image)
    assert result.psm == 7
    assert score(LINE, result.text).cer < 0.05
    assert [w.text for w in result.words][:2] == ["The", "quick"]


def test_a_word_crop_with_no_measurable_text_is_read_as_one_line():
    """Letters as tall as a 136-px crop on a speckled ground: no em is measured (textscale), and Tesseract's
    automatic layout (psm 3) reads such a word as nothing."""
    word = speckled_word("PLACE", size=170, specks=1500, grey=150)
    result = recognise(word)
    assert result.psm == 7 and result.text == "PLACE"


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


def test_words_know_their_line():
    two_lines = render_lines("Partial convolution", "Receipt total 9.99")
    result = recognise(two_lines)
    assert len(result.lines()) == 2
    assert [" ".join(w.text for w in line) for line in result.lines()] == result.text.split("\n")


def reading(*lines: list[tuple[str, float, int]]) -> OcrResult:
    """A reading of lines of (word, confidence, x of its left edge); words 10 px per letter, lines 20 px apart."""
    words = [Word(text, confidence, (x, 20 * i, x + 10 * len(text), 20 * i + 15), i)
             for i, line in enumerate(lines) for text, confidence, x in line]
    return OcrResult("\n".join(" ".join(text for text, *_ in line) for line in lines), words)


def test_a_word_is_read_from_the_input_only_when_clearly_more_confident():
    restored = reading([("Total", 90, 0), ("9.9", 40, 60)], [("Cash", 80, 0)], [("Change", 70, 0)])
    original = reading([("Total", 91, 0), ("9.99", 96, 60)], [("Cash", 82, 0)], [("Chan", 20, 0), ("-ge", -1, 40)])
    chosen, from_original = more_confident(restored, original, margin=5)
    assert chosen.text == "Total 9.99\nCash\nChange"
    assert from_original == 1
    assert [w.line for w in chosen.words] == [0, 0, 1, 2]
    assert more_confident(restored, original, margin=60)[0].text == restored.text


def test_words_split_differently_are_compared_as_one_group():
    # "9.99" read as two words in the input: both overlap the restored word, so the three are one group
    restored = reading([("Total", 90, 0), ("9.99", 50, 60)])
    original = reading([("Total", 60, 0), ("9.", 95, 60), ("99", 95, 82)])
    assert more_confident(restored, original)[0].text == "Total 9. 99"
    assert more_confident(original, restored)[0].text == "Total 9. 99"


def test_a_word_only_one_reading_has_is_kept_in_place():
    restored = reading([("Total", 90, 0), ("9.99", 90, 120)])
    original = reading([("Total", 90, 0), ("cash", 30, 60), ("9.99", 90, 120)])
    chosen, from_original = more_confident(restored, original)
    assert chosen.text == "Total cash 9.99" and from_original == 1
    assert more_confident(original, restored)[0].text == "Total cash 9.99"
    # an engine that reads through occluders (PP-OCR) drops what only the filling shows it, under a hole only
    hole = np.zeros((20, 200), bool)
    hole[:, 70:80] = True
    assert more_confident(original, restored, mask=hole, keep_new_words=False)[0].text == "Total 9.99"
    assert more_confident(original, restored, mask=hole)[0].text == "Total cash 9.99"
    assert more_confident(restored, original, mask=hole, keep_new_words=False)[0].text == "Total cash 9.99"  # the input's


def test_readings_of_different_layouts_are_compared_whole():
    restored = reading([("Total", 40, 0), ("9.99", 40, 60)])
    original = reading([("Total", 95, 0)], [("9.99", 95, 0)])
    assert more_confident(restored, original) == (original, 2)
    assert more_confident(original, restored) == (original, 0)
    empty = OcrResult("")
    assert more_confident(empty, original) == (original, 2)
    assert more_confident(original, empty) == (original, 0)
    # as many lines, but not the same ones: lines paired by order that share no rows are compared whole
    shifted = OcrResult.from_lines([[Word("9.99", 95, (0, 20, 40, 35))]], 7)
    assert more_confident(reading([("Total", 40, 0)]), shifted)[0].text == "9.99"
    assert more_confident(reading([("Total", 99, 0)]), shifted)[0].text == "Total"


def test_lines_pair_by_where_they_lie_not_by_their_order():
    # the restoration read junk above the first line, the input junk below the last: paired by order, each line
    # would meet its neighbour, and the page would read "Total 9.90\nTotal 9.99\n=", a line twice and one lost
    restored = reading([("~~", 30, 0)], [("Total", 90, 0), ("9.99", 90, 60)], [("Cash", 90, 0)])
    original = OcrResult.from_lines([[Word(text, confidence, (x, y, x + 10 * len(text), y + 15)) for text, confidence, x in line]
                                     for y, line in ((20, [("Total", 95, 0), ("9.90", 95, 60)]), (40, [("Cash", 80, 0)]),
                                                     (60, [("=", 40, 0)]))], 3)
    hole = np.zeros((80, 120), bool)
    hole[22:30, 65:95] = True  # over the amount only
    chosen, from_original = more_confident(restored, original, mask=hole)
    # away from the hole the input's reading, its junk line too; the restored junk line no hole touches is dropped
    assert chosen.text == "Total 9.99\nCash\n="
    assert from_original == 3


def test_the_judge_decides_where_one_reading_has_at_most_one_line():
    asked = []

    def judge(mine, other):  # prefers the input's reading, whatever it is
        asked.append(([w.text for w in mine], [w.text for w in other]))
        return True

    junk = reading([("~~", 90, 0), (">", 90, 40)], [("_—_—", 90, 0)])  # marks a word crop's restoration read as text
    assert more_confident(junk, OcrResult(""), judge=judge) == (OcrResult(""), 0)
    assert asked == [(["~~", ">", "_—_—"], [])]
    # pages that read a line more or less are compared whole by confidence: the judge reads one line
    asked.clear()
    page = reading([("Total", 96, 0)], [("Cash", 96, 0)], [("Change", 96, 0)])
    assert more_confident(page, junk, judge=judge)[0] == page and asked == []
    # so are a block's lines read against one junk word, where the image is taller than one line
    block, stray = reading([("Total", 90, 0)], [("Cash", 90, 0)]), reading([("ai", 95, 0)])
    assert more_confident(block, stray, judge=judge, one_line=False)[0] == block and asked == []
    assert more_confident(block, stray, judge=judge)[0] == stray and asked == [(["Total", "Cash"], ["ai"])]


def test_a_restoration_read_as_more_lines_than_the_image_holds_is_not_kept():
    word = reading([("PLACE", 40, 0)])  # a scene word, read unsure of itself
    # a textured ground read as lines once the holes are filled, each line surer than the word
    texture = reading(*[[("ee", 90, 0), ("Fa", 90, 40)] for _ in range(6)])
    assert more_confident(texture, word, one_line=False)[0] == texture  # by confidence
    assert more_confident(texture, word, one_line=False, line_room=4.0) == (word, 1)  # 6 lines in 4 ems
    assert more_confident(texture, word, one_line=False, line_room=8.0)[0] == texture
    # a page's columns: more lines than its height in ems, read beside the input's several
    columns = reading([("Total", 40, 0)], [("Cash", 40, 0)])
    assert more_confident(texture, columns, one_line=False, line_room=4.0)[0] == texture


def known_letters(words):
    """`language.known_letters` with a lexicon of four words."""
    return sum(len(w.text) for w in words if w.text.lower() in {"total", "cash", "change", "paid"})


RECEIPT = [("Total", 90, 0), ("Cash", 90, 60), ("Change", 90, 110)]  # a line of 15 lexicon letters, 170 px wide
TWO_COLUMNS = RECEIPT + [(text, confidence, x + 200) for text, confidence, x in RECEIPT]  # two lines read as one


def test_pages_laid_out_differently_are_compared_by_the_words_they_spell():
    page = reading([("Total", 90, 0)], [("C~h", 30, 0)], [("Change", 90, 0)])  # an occluder on "Cash"
    restored = reading([("Total", 60, 0), ("Cash", 60, 60)], [("Change", 60, 0)])  # read less sure, one line fewer
    assert more_confident(restored, page, one_line=False)[0] == page  # by confidence
    assert more_confident(restored, page, one_line=False, known_letters=known_letters) == (restored, 0)
    junk = reading([("Tota", 96, 0), ("1C", 96, 50)], [("ash", 96, 0)])  # a false alarm's restoration, read surer
    assert more_confident(junk, page, one_line=False)[0] == junk
    assert more_confident(junk, page, one_line=False, known_letters=known_letters) == (page, 3)
    same = reading([("Total", 96, 0), ("C~h", 96, 60)], [("Change", 96, 0)])
    assert more_confident(same, page, one_line=False, known_letters=known_letters) == (page, 3)  # a tie: the input's
    # one line's readings are the judge's and the confidence's: a scene word is seldom a word of the lexicon
    assert more_confident(junk, page, known_letters=known_letters)[0] == junk
    # and so are a reading of one line and one of several: a short crop's junk spells words too ("we", "Pen")
    one = reading([("Tota1", 96, 0), ("Cash", 96, 60)])
    assert more_confident(one, page, one_line=False, known_letters=known_letters)[0] == one


def test_a_page_laid_out_anew_must_spell_clearly_more_than_the_input():
    page = reading(*[RECEIPT] * 6)
    # a false alarm's restoration, read in another layout (two lines as one), spelling one word more by chance:
    # 94 letters against 90 is Tesseract reading much the same page in another order, and the input is kept
    restored = reading(TWO_COLUMNS, *[RECEIPT] * 3, RECEIPT + [("Paid", 96, 170)])
    assert more_confident(restored, page, one_line=False, known_letters=known_letters) == (page, 18)
    # a word more in each line is a restoration that brought text back
    brought_back = reading(TWO_COLUMNS, *[RECEIPT + [("Paid", 96, 170)]] * 4)
    assert more_confident(brought_back, page, one_line=False, known_letters=known_letters) == (brought_back, 0)


def test_a_page_mostly_masked_keeps_its_restored_layout():
    page = reading(*[RECEIPT] * 6)  # 120 px tall, 170 wide
    # the restoration read in another layout, spelling a word fewer: a false alarm's, where the mask is small
    restored = reading(TWO_COLUMNS, *[RECEIPT] * 3, [("Total", 90, 0), ("Cash", 90, 60)])
    mask = np.zeros((120, 400), bool)
    mask[105:120, 110:170] = True  # under "Change" of the last line: 2% of the page
    chosen = more_confident(restored, page, mask=mask, one_line=False, known_letters=known_letters)[0]
    assert chosen == page
    # an occluder over a sixth of the page broke the input's layout: its restored one is read
    mask[100:120, :] = True
    chosen = more_confident(restored, page, mask=mask, one_line=False, known_letters=known_letters)[0]
    assert chosen == restored


def test_scene_words_on_coloured_grounds_are_read():
    # handed over in colour, Tesseract read these 16 at CER 0.43 (one Otsu threshold per channel); in grey, 0.23
    from ocr_restore.data.render import render

    total = Score()
    for seed in range(16):
        sample = render("scene", np.random.default_rng(seed))
        total += score(sample.text, recognise(sample.image).text, ignore_case=True, alnum_only=True)
    assert total.cer < 0.33


def test_tesseract_runs_on_one_openmp_thread_unless_a_limit_is_set(monkeypatch, line_image):
    import os

    import pytesseract

    seen, image_to_data = [], pytesseract.image_to_data

    def spy(*args, **kwargs):
        seen.append(os.environ.get("OMP_THREAD_LIMIT"))
        return image_to_data(*args, **kwargs)

    monkeypatch.setattr(pytesseract, "image_to_data", spy)
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    recognise(line_image)
    assert seen == ["1"] and "OMP_THREAD_LIMIT" not in os.environ  # torch, loaded later, keeps its threads
    monkeypatch.setenv("OMP_THREAD_LIMIT", "2")
    recognise(line_image)
    assert seen[-1] == "2"


def test_readings_side_by_side_are_those_of_one_at_a_time_in_order(monkeypatch):
    import os

    import pytesseract

    seen, image_to_data = [], pytesseract.image_to_data

    def spy(*args, **kwargs):
        seen.append(os.environ.get("OMP_THREAD_LIMIT"))
        return image_to_data(*args, **kwargs)

    images = [render_line("Partial convolution"), render_line("Receipt total 9.99"), render_line("Masked renormalised")]
    one_at_a_time = [recognise(image).text for image in images]
    monkeypatch.setattr(pytesseract, "image_to_data", spy)
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    side_by_side = recognise_all(images, processes=2)
    assert [r.text for r in side_by_side] == one_at_a_time == ["Partial convolution", "Receipt total 9.99", "Masked renormalised"]
    assert seen == ["1"] * 3 and "OMP_THREAD_LIMIT" not in os.environ


def test_a_word_no_hole_touches_is_the_inputs_whatever_the_confidences():
    restored = reading([("Tota1", 95, 0), ("9.99", 95, 60)], [("cash", 95, 0)])
    original = reading([("Total", 20, 0), ("9.90", 20, 60)], [("cash", 20, 0), ("paid", 20, 50)])
    mask = np.zeros((40, 120), bool)
    mask[2:8, 62:70] = True  # a hole in "9.99" only
    chosen, from_original = more_confident(restored, original, mask=mask)
    assert chosen.text == "Total 9.99\ncash paid" and from_original == 3
    # the restored reading's extra word away from the holes is dropped, as Tesseract alone did not read it
    restored_extra = reading([("Total", 95, 0), ("9.99", 95, 60), ("x", 95, 100)])
    assert more_confident(restored_extra, reading([("Total", 20, 0), ("9.99", 20, 60)]), mask=mask)[0].text == "Total 9.99"
    # readings of different layouts, no hole under any word: the input's whole
    assert more_confident(reading([("Total", 99, 0)], [("9.99", 99, 0)]), original, mask=np.zeros((40, 120), bool)) \
        == (original, 4)
