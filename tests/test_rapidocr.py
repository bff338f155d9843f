"""The PP-OCRv4 engine on rendered text, against rapidocr_onnxruntime's own implementation of the same models.

`make setup` installs the models (and the test extra the reference's pyclipper and shapely); skipped only where
they are really absent.
"""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFont

from ocr_restore import rapidocr
from ocr_restore.errors import MissingDependencyError
from ocr_restore.metrics import score
from ocr_restore.pipeline import Pipeline

from .conftest import FONT, LINE, render_line, render_lines, stroke_over

pytestmark = pytest.mark.skipif(importlib.util.find_spec(rapidocr.PACKAGE) is None,
                                reason=f"{rapidocr.PACKAGE} is not installed")
MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


@pytest.fixture(scope="module")
def engine() -> rapidocr.RapidOcr:
    return rapidocr.RapidOcr()


@pytest.fixture(scope="module")
def reference():
    """RapidOCR's own pipeline on the same ONNX files: the independent reading to agree with."""
    pytest.importorskip("pyclipper")
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def test_recognition_agrees_with_rapidocr(reference):
    one_line = rapidocr.RapidOcr(psm=7)  # recognised whole, as RapidOCR without detection
    for text, font in [(LINE, FONT), ("SUB TOTAL: 37.08", MONO), ("Partial convolution", FONT)]:
        image = render_line(text, font_file=font)
        theirs = reference(image[:, :, ::-1].copy(), use_det=False, use_cls=False, use_rec=True)[0][0][0]
        ours = one_line.read(image)
        # the same characters; ours may add a space where the ink has a gap PP-OCR read as nothing
        assert ours.text.replace(" ", "") == theirs.replace(" ", "")
        assert score(text, ours.text).cer == 0


def test_detected_lines_agree_with_rapidocr(engine, reference):
    image = render_lines("Partial convolution", "Receipt total 9.99", "Kept in reading order")
    ours = engine.read(image)
    assert ours.psm not in rapidocr.ONE_LINE_PSMS
    assert ours.text.split("\n") == ["Partial convolution", "Receipt total 9.99", "Kept in reading order"]
    theirs = reference(image[:, :, ::-1].copy(), use_cls=False)[0]
    boxes = [np.array(box) for box, _, _ in theirs]
    for line in ours.lines():  # every line of ours lies where theirs found one
        x0, y0 = min(w.box[0] for w in line), min(w.box[1] for w in line)
        x1, y1 = max(w.box[2] for w in line), max(w.box[3] for w in line)
        best = max(_iou((x0, y0, x1, y1), (*box.min(axis=0), *box.max(axis=0))) for box in boxes)
        assert best > 0.6


def _iou(a, b) -> float:
    inner = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inner / (area(a) + area(b) - inner)


def test_word_boxes_are_where_the_words_are_drawn(engine):
    image = render_line(LINE)
    font, margin = ImageFont.truetype(FONT, 32), 16
    left = font.getbbox(LINE)[0]
    result = engine.read(image)
    assert [w.text for w in result.words] == LINE.split()
    start = 0
    for word in result.words:  # the drawn extent of each word, from the font's own metrics
        start = LINE.index(word.text, start)
        drawn = (margin - left + font.getlength(LINE[:start]), margin - left + font.getlength(LINE[:start + len(word.text)]))
        centre = (word.box[0] + word.box[2]) / 2
        assert drawn[0] < centre < drawn[1], (word.text, word.box, drawn)
        assert 0 < word.confidence <= 100
        start += len(word.text)


def test_spaces_come_from_the_ink_and_narrow_glyphs_do_not_split_words(engine):
    # a monospaced font gives "..." and ":" wide side bearings; a space is wider still
    result = engine.read(render_line("TOTAL...: 12.50 RM", font_file=MONO))
    assert result.text == "TOTAL...: 12.50 RM"


def test_blank_image_gives_empty_text(engine):
    assert engine.read(np.full((40, 200, 3), 255, np.uint8)).text == ""


def test_missing_models_name_the_install_command(monkeypatch):
    monkeypatch.setattr(rapidocr.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps rapidocr_onnxruntime==1.4.4"):
        rapidocr.models_dir()


def test_pipeline_reads_with_rapidocr_and_keeps_provenance():
    clean = render_line("Receipt total 9.99")
    occluded, mask = stroke_over(clean)
    pipeline = Pipeline(detector="classical", inpainter="telea", ocr="rapidocr")
    result = pipeline(occluded, mask, transcript="Receipt total 9.99")
    assert result.stages["ocr"].startswith("rapidocr PP-OCRv4")
    assert result.accuracy["after"]["cer"] <= result.accuracy["before"]["cer"]
    assert result.accuracy["after"]["cer"] < 0.1
    assert {w.source for w in result.words} <= {"input", "restored"}
    assert all(0 <= w.hidden <= 1 for w in result.words)


def test_bench_reads_the_same_restorations_with_both_engines(occluded_folder, tmp_path):
    from .test_cli import CLASSICAL, invoke

    result = invoke("bench", occluded_folder, "-o", tmp_path / "r", "--masks", tmp_path / "masks",
                    "--clean", tmp_path / "clean", "--ocr", "tesseract,rapidocr", *CLASSICAL)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert list(summary["ocr"].unique()) == ["tesseract", "rapidocr"]
    variants = ["occluded", "restored", "confident", "language", "telea", "ns", "clean"]
    assert all(list(summary[summary["ocr"] == engine]["variant"]) == variants for engine in ("tesseract", "rapidocr"))
    report = pd.read_csv(tmp_path / "r" / "report.csv")
    assert len(report) == 6 and list(report["ocr"][:2]) == ["tesseract", "rapidocr"]
    assert report.groupby("name")["occluded_fraction"].nunique().eq(1).all()  # one restoration, read twice
    assert report[report["ocr"] == "rapidocr"]["ocr_stage"].str.startswith("rapidocr PP-OCRv4").all()
    assert "rapidocr" in (tmp_path / "r" / "report.md").read_text()


@pytest.mark.parametrize("arguments, message", [
    (["--ocr", "tesseract,rapidocr"], "--ocr takes one engine here"),
    (["--ocr", "rapidocr", "--lang", "deu"], "--lang is Tesseract's"),
    (["--ocr", "easyocr"], "give tesseract or rapidocr"),
])
def test_engine_choices_are_checked_before_any_work(tmp_path, arguments, message):
    from .test_cli import invoke

    image = tmp_path / "line.png"
    Image.fromarray(render_line()).save(image)
    result = invoke(image, *arguments)
    assert result.exit_code == 2 and message in result.output


def test_batch_reads_with_rapidocr_and_says_so(occluded_folder, tmp_path):
    from .test_cli import CLASSICAL, invoke

    result = invoke("batch", occluded_folder, "-o", tmp_path / "out", "--masks", tmp_path / "masks", "--ocr", "rapidocr",
                    *CLASSICAL)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (table["status"] == "ok").all() and table["ocr"].str.startswith("rapidocr PP-OCRv4").all()
    assert (table["cer_after"] <= table["cer_before"]).all()
