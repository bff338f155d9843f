"""The second opinion: a recogniser scores two readings of a word under the mask on the input's visible ink,
and the confident reading keeps the one it supports."""

import numpy as np
import pytest

pytest.importorskip("easyocr_en_models")

from ocr_restore import Pipeline  # noqa: E402
from ocr_restore.judge import InkJudge  # noqa: E402
from ocr_restore.ocr import OcrResult, Word, more_confident  # noqa: E402

from .test_language import line_image  # noqa: E402


@pytest.fixture(scope="module")
def judge() -> InkJudge:
    return InkJudge()


@pytest.fixture(scope="module")
def line():
    """ "the government said" with the "n" of "government" painted over in paper."""
    return line_image("the government said", word=1, hide=5)


def test_the_reading_the_visible_ink_supports_wins(judge, line):
    image, mask, boxes = line
    right, wrong = [Word("government", 40.0, boxes[1])], [Word("gavernmemt", 95.0, boxes[1])]
    assert judge(image, mask, restored=wrong, original=right) is True
    assert judge(image, mask, restored=right, original=wrong) is False
    assert judge(image, mask, restored=right, original=right) is None  # no choice to make


def test_reading_nothing_is_a_reading_the_ink_can_refute(judge, line):
    image, mask, boxes = line
    word = [Word("government", 40.0, boxes[1])]
    assert judge(image, mask, restored=word, original=[]) is False  # the ink shows a word
    blank = np.full_like(image, 255)
    assert judge(blank, np.zeros_like(mask), restored=[Word("~~ >", 95.0, boxes[1])], original=[]) is True


def test_the_judge_overrules_the_confidence_only_under_the_mask(judge, line):
    image, mask, boxes = line
    texts = ["the", "government", "said"]
    restored = OcrResult.from_lines([[Word(t, 95.0, b, source="restored") for t, b in
                                      zip(["tho", "gavernmemt", "said"], boxes)]], psm=7).read_on("restored", mask)
    original = OcrResult.from_lines([[Word(t, 40.0, b) for t, b in zip(texts, boxes)]], psm=7).read_on("input", mask)
    asked = []

    def ask(mine, theirs):
        asked.append(theirs[0].text)
        return judge(image, mask, mine, theirs)

    by_confidence, _ = more_confident(restored, original, mask=mask)
    judged, from_input = more_confident(restored, original, mask=mask, judge=ask)
    assert by_confidence.text == "the gavernmemt said"  # Tesseract's 95 against 40
    assert judged.text == "the government said" and from_input == 3
    assert asked == ["government"]  # the words no hole touches are the input's without asking


def test_the_pipeline_names_its_judge():
    image, mask, _ = line_image("the government said", word=1, hide=5)
    result = Pipeline(inpainter="telea", language_prior=False)(image, mask)
    assert result.stages["reading"].startswith("confident, judged by EasyOCR english_g2")
    assert Pipeline(inpainter="telea", language_prior=False, reading="restored")(image, mask).stages["reading"] == \
        "restored"
    assert isinstance(result.words_from_input, int) and np.array_equal(result.mask, mask)
