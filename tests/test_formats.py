"""hOCR and ALTO outputs, parsed back with an XML parser and held to the JSON they were written beside."""

import json
import shutil
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from ocr_restore.formats import ALTO_NS, HOCR_CAPABILITIES

from .conftest import render_lines, stroke_over
from .test_cli import CLASSICAL, invoke

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
XHTML = "{http://www.w3.org/1999/xhtml}"
ALTO = f"{{{ALTO_NS}}}"


@pytest.fixture
def outputs(tmp_path):
    """An occluded two-line scan run with --format hocr,alto: its JSON record and the output folder."""
    occluded, mask = stroke_over(render_lines("Partial convolution", "Receipt total 9.99"))
    Image.fromarray(occluded).save(tmp_path / "scan.png")
    Image.fromarray(mask.astype("uint8") * 255).save(tmp_path / "mask.png")
    result = invoke(tmp_path / "scan.png", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out",
                    "--format", "hocr,alto", *CLASSICAL)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    return json.loads((out / "scan.json").read_text()), out


def _title(element) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in element.get("title").split(";"))


def test_hocr_words_are_the_json_words(outputs):
    record, out = outputs
    root = ET.parse(out / "scan.hocr").getroot()
    metas = {m.get("name"): m.get("content") for m in root.iter(f"{XHTML}meta") if m.get("name")}
    assert set(metas["ocr-capabilities"].split()) == set(HOCR_CAPABILITIES.split()) >= {"x_hidden", "x_source"}
    page = next(e for e in root.iter(f"{XHTML}div") if e.get("class") == "ocr_page")
    assert _title(page)["bbox"] == f"0 0 {record['size'][0]} {record['size'][1]}"
    lines = [e for e in root.iter(f"{XHTML}span") if e.get("class") == "ocr_line"]
    words = [e for e in root.iter(f"{XHTML}span") if e.get("class") == "ocrx_word"]
    assert len(lines) == len(record["text"].split("\n")) and len(words) == len(record["words"]) > 0
    for element, word in zip(words, record["words"]):
        title = _title(element)
        assert element.text == word["text"]
        assert tuple(map(int, title["bbox"].split())) == tuple(word["box"])
        assert int(title["x_wconf"]) == max(0, round(word["confidence"]))
        assert float(title["x_hidden"]) == pytest.approx(word["hidden"], abs=1e-4)
        assert title["x_source"] == word["source"]
    assert {title["x_source"] for title in map(_title, words)} == {"input", "restored"}  # both kinds, told apart


def test_alto_strings_are_the_json_words_and_restored_ones_point_to_ocr_restore(outputs):
    record, out = outputs
    root = ET.parse(out / "scan.alto.xml").getroot()
    assert root.tag == f"{ALTO}alto"
    description = root.find(f"{ALTO}Description")
    # the schema's sequences: MeasurementUnit, sourceImageInformation, Processing...; a step's category first
    assert [child.tag for child in description] == [f"{ALTO}{t}" for t in
                                                    ("MeasurementUnit", "sourceImageInformation", "Processing", "Processing")]
    steps = {step.get("ID"): step for step in description.iter(f"{ALTO}Processing")}
    for step in steps.values():
        assert [child.tag for child in step] == [f"{ALTO}{t}" for t in
                                                 ("processingCategory", "processingStepDescription", "processingSoftware")]
    strings = list(root.iter(f"{ALTO}String"))
    assert len(strings) == len(record["words"])
    ids = [e.get("ID") for e in root.iter() if e.get("ID")]
    assert len(ids) == len(set(ids))
    for string, word in zip(strings, record["words"]):
        x0, y0, x1, y1 = word["box"]
        assert string.get("CONTENT") == word["text"]
        assert [int(string.get(k)) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT")] == [x0, y0, x1 - x0, y1 - y0]
        assert 0 <= float(string.get("WC")) <= 1
        assert float(string.get("WC")) == pytest.approx(max(0, word["confidence"]) / 100, abs=0.005)
        software = steps[string.get("PROCESSINGREFS")].find(f"{ALTO}processingSoftware/{ALTO}softwareName").text
        assert (software == "ocr-restore") == (word["source"] == "restored")


def test_a_word_no_hole_touches_is_the_inputs(outputs):
    record, _ = outputs
    untouched = [w for w in record["words"] if w["hidden"] == 0]
    assert untouched and all(w["source"] == "input" for w in untouched)
    input_words = record["input_text"].split()
    assert all(w["text"] in input_words for w in untouched)


def test_format_needs_an_output_folder(tmp_path):
    Image.fromarray(render_lines("Partial convolution")).save(tmp_path / "scan.png")
    result = invoke(tmp_path / "scan.png", "--format", "hocr", *CLASSICAL)
    assert result.exit_code == 2 and "give -o DIR" in result.output
    result = invoke(tmp_path / "scan.png", "-o", tmp_path / "out", "--format", "pdf", *CLASSICAL)
    assert result.exit_code == 2 and "choose among hocr, alto" in result.output


def test_a_batch_rerun_adds_a_format_from_the_json_alone(occluded_folder, tmp_path):
    out = tmp_path / "out"
    first = invoke("batch", occluded_folder, "-o", out, "--masks", tmp_path / "masks", *CLASSICAL)
    assert first.exit_code == 0, first.output
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    again = invoke("batch", occluded_folder, "-o", out, "--masks", tmp_path / "masks", "--format", "alto", *CLASSICAL)
    assert again.exit_code == 0 and "0 done, 3 already done" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.json")} == stamps  # nothing was run again
    for json_path in stamps:
        record = json.loads(json_path.read_text())
        alto = ET.parse(json_path.with_name(json_path.name.removesuffix(".json") + ".alto.xml")).getroot()
        assert [s.get("CONTENT") for s in alto.iter(f"{ALTO}String")] == [w["text"] for w in record["words"]]
