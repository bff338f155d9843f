"""The language prior: a weak word under the mask becomes the likeliest English word that fits its visible
letters; visible letters, numbers, sure words and words away from the mask stay as read."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

pytest.importorskip("wordfreq")
pytest.importorskip("easyocr_en_models")

from ocr_restore.cli import main  # noqa: E402
from ocr_restore.formats import to_alto, to_hocr  # noqa: E402
from ocr_restore.language import LanguagePrior, _fits, known_letters  # noqa: E402
from ocr_restore.nn.recognizer import BLANK, ctc_loss, load_recognizer, log_likelihoods, prepare  # noqa: E402
from ocr_restore.ocr import LANGUAGE_GATE, OcrResult, Word  # noqa: E402

from .conftest import FONT  # noqa: E402

SIZE, MARGIN = 40, 12


def line_image(text: str, word: int, hide: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int]]]:
    """`text` rendered black on white with letter `hide` of its word `word` painted over in paper, as a fill
    that drew no ink; the image, the hole's mask and each word's box."""
    font = ImageFont.truetype(FONT, SIZE)
    top, bottom = font.getbbox(text)[1], font.getbbox(text)[3]
    image = Image.new("RGB", (round(font.getlength(text)) + 2 * MARGIN, bottom - top + 2 * MARGIN), "white")
    ImageDraw.Draw(image).text((MARGIN, MARGIN - top), text, font=font, fill="black")
    pixels = np.asarray(image).copy()
    boxes, start = [], 0
    for token in text.split(" "):
        start = text.index(token, start)
        x0, x1 = (MARGIN + round(font.getlength(text[:start + i])) for i in (0, len(token)))
        boxes.append((x0, MARGIN, x1, MARGIN + bottom - top))
        start += len(token)
    mask = np.zeros(pixels.shape[:2], bool)
    left = boxes[word][0] + round(font.getlength(text.split(" ")[word][:hide]))
    mask[:, left:boxes[word][0] + round(font.getlength(text.split(" ")[word][:hide + 1]))] = True
    pixels[mask] = 255
    return pixels, mask, boxes


@pytest.fixture(scope="module")
def prior() -> LanguagePrior:
    return LanguagePrior()


def read_as(texts: list[str], boxes, mask: np.ndarray, confidence: float = 40.0) -> OcrResult:
    """A reading of one line: each text at its box, the sure words (hidden 0) at 96, the others at `confidence`."""
    words = [Word(text, 96.0, box).read_on("restored", mask) for text, box in zip(texts, boxes)]
    return OcrResult.from_lines([[replace(w, confidence=confidence) if w.hidden else w for w in words]], psm=7)


@pytest.mark.parametrize("line, reading, hide", [("the government said", "goverrment", 5),
                                                 ("THE GOVERNMENT SAID", "GOVERRMENT", 5),
                                                 ("the chicken said", "chicsen", 4)])
def test_a_hidden_letter_is_written_in_from_the_lexicon(prior, line, reading, hide):
    image, mask, boxes = line_image(line, 1, hide)
    texts = line.split(" ")
    words = prior(read_as([texts[0], reading, texts[2]], boxes, mask), image, mask, LANGUAGE_GATE).words
    assert [w.text for w in words] == texts and words[1].source == "language"
    assert 0 < words[1].confidence <= 100 and words[1].box == boxes[1] and words[1].hidden > 0
    assert words[0].source == words[2].source == "restored"


def test_the_other_readings_are_candidates(prior):
    image, mask, boxes = line_image("the chicken said", 1, 4)
    other = OcrResult.from_lines([[Word("chicken", 30.0, boxes[1])]], psm=7)
    reading = read_as(["the", "chic*en", "said"], boxes, mask)
    assert prior(reading, image, mask, LANGUAGE_GATE, alternatives=(other,)).text == "the chicken said"


def test_visible_letters_sure_words_numbers_and_lone_words_stay_as_read(prior):
    image, mask, boxes = line_image("the government said", 1, 5)
    no_mask = np.zeros_like(mask)
    unchanged = [
        # the wrong letter is visible (the "x"): no lexicon word differs from this reading at hidden letters only
        (read_as(["the", "goxerrment", "said"], boxes, mask), mask),
        (read_as(["the", "goverrment", "said"], boxes, mask, confidence=95), mask),  # sure of it
        (read_as(["the", "goverrment", "said"], boxes, no_mask), no_mask),  # nothing hidden
        (read_as(["goverrment"], boxes[1:2], mask), mask),  # alone: no visible word measures its width in glyphs
        (read_as(["the", "go'errment", "said"], boxes, mask), mask),  # a visible mark that is no letter
    ]
    contraction, contraction_mask, contraction_boxes = line_image("so I'll go", 1, 1)  # the apostrophe hidden
    unchanged.append((read_as(["so", "I'll", "go"], contraction_boxes, contraction_mask), contraction_mask))
    for reading, holes in unchanged:
        pixels = contraction if holes is contraction_mask else image
        assert prior(reading, pixels, holes, LANGUAGE_GATE).text == reading.text
    # a line whose whole words the lexicon lacks (a Malay address) is not English: its weak word stays as read
    address, address_mask, address_boxes = line_image("jalan goverrment tampoi", 1, 5)
    reading = read_as(["jalan", "goverrment", "tampoi"], address_boxes, address_mask)
    assert prior(reading, address, address_mask, LANGUAGE_GATE).text == reading.text
    price, price_mask, price_boxes = line_image("total 37.08 paid", 1, 3)
    assert prior(read_as(["total", "37.0B", "paid"], price_boxes, price_mask), price, price_mask, LANGUAGE_GATE).text == \
        "total 37.0B paid"


def test_fits_allows_edits_at_hidden_letters_only():
    hidden = [False, False, True, False]
    assert _fits("hoxse", "house", [False, False, True, False, False])
    assert not _fits("hoxse", "horse", [False, False, False, True, False])
    assert _fits("hose", "house", hidden)  # an insertion beside the hidden letter
    assert not _fits("hose", "hoses", hidden)


def test_log_likelihoods_are_the_ctc_losses():
    net = load_recognizer()
    image, _, _ = line_image("coffee", 0, 0)
    with torch.no_grad():
        logits = net(prepare(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255))
        scores = log_likelihoods(logits, ["coffee", "COFFEE", "window", "x" * 500, "", "\u4e2d"], fold_case=True)
        # torch's mean CTC loss is per target character: times the length it is the negative log-likelihood
        assert torch.isclose(scores[0], -6 * ctc_loss(logits, ["coffee"], fold_case=True), rtol=1e-4)
        nothing = logits.log_softmax(-1)[0, :, BLANK].sum()  # reading nothing: the blank in every column
    assert scores[0] == scores[1] and scores[0] > scores[2] and scores[3] == -torch.inf
    assert torch.isclose(scores[4], nothing) and scores[4] < scores[0] and scores[5] == -torch.inf
    # where every column is hidden the ink says nothing: texts of one length (and no double letter) are equally likely
    blind = log_likelihoods(logits, ["window", "garden"], fold_case=True, hidden=torch.ones(logits.shape[1]))
    assert torch.isclose(blind[0], blind[1], rtol=1e-4)


def test_cli_flags_language_words_and_can_turn_the_prior_off(tmp_path):
    image, mask, _ = line_image("the government said", 1, 5)
    Image.fromarray(image).save(tmp_path / "word.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "word.mask.png")
    runner = CliRunner()
    on = runner.invoke(main, ["run", str(tmp_path / "word.png"), "--mask", str(tmp_path / "word.mask.png"), "--json",
                              "--inpainter", "telea"])
    off = runner.invoke(main, ["run", str(tmp_path / "word.png"), "--mask", str(tmp_path / "word.mask.png"), "--json",
                               "--inpainter", "telea", "--no-language-prior"])
    assert on.exit_code == 0 and off.exit_code == 0, on.output + off.output
    on, off = json.loads(on.stdout), json.loads(off.stdout)
    assert on["stages"]["language"].startswith("wordfreq") and off["stages"]["language"] == "off"
    assert all(w["source"] != "language" for w in off["words"])
    changed = [w for w in on["words"] if w["source"] == "language"]
    assert all(w["hidden"] > 0 for w in changed)
    assert all(w["text"] == "government" for w in changed)  # a change is the right word


def test_bench_reports_the_prior_and_trusts_its_words(occluded_folder, tmp_path):
    report = tmp_path / "report"
    result = CliRunner().invoke(main, ["bench", str(occluded_folder), "--masks", str(tmp_path / "masks"),
                                       "--clean", str(tmp_path / "clean"), "-o", str(report), "--inpainter", "telea"])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(report / "report.csv")
    assert {"cer_confident", "cer_language"} <= set(rows.columns)
    trust = pd.read_csv(report / "trust.csv").set_index("hidden")
    assert "source_language" in trust.index and trust.at["source_language", "words"] >= 0
    off = CliRunner().invoke(main, ["bench", str(occluded_folder), "--masks", str(tmp_path / "masks"),
                                    "-o", str(tmp_path / "off"), "--inpainter", "telea", "--no-language-prior"])
    assert off.exit_code == 0, off.output
    assert "cer_language" not in pd.read_csv(tmp_path / "off" / "report.csv").columns


def test_hocr_and_alto_name_the_language_step():
    record = {"text": "government", "size": [300, 60], "stages": {"ocr": "tesseract 5 psm=8", "language": "wordfreq"},
              "words": [{"text": "government", "confidence": 80.0, "box": [10, 10, 290, 50], "line": 0,
                         "source": "language", "hidden": 0.1}]}
    assert "x_source language" in to_hocr(record, "word.png")
    alto = to_alto(record, "word.png")
    assert 'ID="language"' in alto and 'PROCESSINGREFS="language"' in alto


def test_without_its_packages_the_pipeline_reads_without_the_prior_and_says_so(monkeypatch):
    from ocr_restore import language
    from ocr_restore.errors import MissingDependencyError
    from ocr_restore.pipeline import Pipeline

    def missing():
        raise MissingDependencyError("the language prior needs wordfreq: install it with `pip install x`")

    monkeypatch.setattr(language, "_lexicon", missing)
    warnings = []
    pipeline = Pipeline(detector="classical", inpainter="telea", warn=warnings.append)
    image, mask, _ = line_image("the government said", 1, 5)
    result = pipeline(image, mask)
    assert pipeline.language_prior is None and result.stages["language"] == "off"
    assert pipeline.known_letters is None and len(warnings) == 2 and all("wordfreq" in w for w in warnings)
    assert "two layouts of a page" in warnings[0] and "without the language prior" in warnings[1]


def test_known_letters_are_the_letters_of_lexicon_words():
    words = [Word(text, 90.0, (0, 0, 10, 10)) for text in ("Government,", "govrnment", "the", "an", "9.99", "I'll")]
    assert known_letters()(words) == len("Government") + len("the")


def test_pp_ocr_readings_are_left_to_the_engine(tmp_path):
    pytest.importorskip("onnxruntime")
    from ocr_restore.pipeline import Pipeline

    image, mask, _ = line_image("the government said", 1, 5)
    result = Pipeline(detector="classical", inpainter="telea", ocr="rapidocr")(image, mask)
    assert result.stages["language"] == "off" and all(w.source != "language" for w in result.words)
