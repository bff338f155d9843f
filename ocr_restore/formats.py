"""hOCR and ALTO: a reading in the two layout formats other OCR tools read, each word with its provenance.

Both are written from a result's JSON record (`Result.to_json()`), so a batch rerun can add them to
outputs already done without reading anything again. They are ours rather than Tesseract's renderers':
the confident reading merges words from two Tesseract runs, and a renderer sees one.

- hOCR 1.2: `ocr_page` > `ocr_carea` > `ocr_par` > `ocr_line` > `ocrx_word`, each word with `bbox` and
  `x_wconf`; ocr-restore's own properties carry the `x_` prefix the spec asks of implementation
  extensions (`x_hidden 0.42; x_source restored`) and are declared in `ocr-capabilities`.
- ALTO 4: `String@WC` in [0, 1] (written by us: Tesseract's ALTO writes 9 as "0.9", tesseract#4615); a
  word read on the restored image points through `PROCESSINGREFS` to the `<Processing>` step that names
  ocr-restore and its detector and inpainter; a word the language prior chose, to the step that names it.
"""

import xml.etree.ElementTree as ET
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .choices import FORMATS
from .files import write_text

__all__ = ["FORMATS", "SUFFIXES", "to_hocr", "to_alto", "write_formats"]

SUFFIXES = {"hocr": ".hocr", "alto": ".alto.xml"}
HOCR_CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf x_hidden x_source"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_SCHEMA = "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OCR_STEP, RESTORE_STEP, LANGUAGE_STEP = "ocr", "restoration", "language"  # the ALTO <Processing> IDs
STEPS = {"input": OCR_STEP, "restored": RESTORE_STEP, "language": LANGUAGE_STEP}  # by Word.source


def _version() -> str:
    try:
        return version("ocr-restore")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _lines(record: dict) -> list[list[dict]]:
    """The record's words, line by line, in reading order."""
    lines: dict[int, list[dict]] = {}
    for word in record["words"]:
        lines.setdefault(word["line"], []).append(word)
    return [lines[i] for i in sorted(lines)]


def _extent(words: list[dict]) -> tuple[int, int, int, int]:
    return (min(w["box"][0] for w in words), min(w["box"][1] for w in words),
            max(w["box"][2] for w in words), max(w["box"][3] for w in words))


def _size(record: dict) -> tuple[int, int]:
    """The page's width and height (older records, without `size`: the words' extent)."""
    if "size" in record:
        return tuple(record["size"])
    return _extent(record["words"])[2:] if record["words"] else (0, 0)


def _serialise(root: ET.Element, doctype: str = "") -> str:
    ET.indent(root, space=" ")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}{ET.tostring(root, encoding="unicode")}\n'


def to_hocr(record: dict, image_name: str, page_number: int = 0) -> str:
    """The hOCR 1.2 page of a result's JSON record, read from `image_name` (its page `page_number`, from 0)."""
    width, height = _size(record)
    html = ET.Element("html", {"xmlns": "http://www.w3.org/1999/xhtml", "xml:lang": "en", "lang": "en"})
    head = ET.SubElement(html, "head")
    ET.SubElement(head, "title").text = image_name
    ET.SubElement(head, "meta", {"http-equiv": "Content-Type", "content": "text/html;charset=utf-8"})
    stages = record.get("stages", {})
    system = f"ocr-restore {_version()} ({stages.get('ocr', 'ocr')}; detector {stages.get('detector')}, " \
             f"inpainter {stages.get('inpainter')})"
    ET.SubElement(head, "meta", {"name": "ocr-system", "content": system})
    ET.SubElement(head, "meta", {"name": "ocr-capabilities", "content": HOCR_CAPABILITIES})
    body = ET.SubElement(html, "body")
    page = ET.SubElement(body, "div", {"class": "ocr_page", "id": "page_1",
                                       "title": f'image "{image_name}"; bbox 0 0 {width} {height}; ppageno {page_number}'})
    lines = _lines(record)
    if lines:
        bbox = "bbox " + " ".join(map(str, _extent(record["words"])))
        block = ET.SubElement(page, "div", {"class": "ocr_carea", "id": "block_1_1", "title": bbox})
        paragraph = ET.SubElement(block, "p", {"class": "ocr_par", "id": "par_1_1", "title": bbox})
        count = 0
        for number, words in enumerate(lines, 1):
            line = ET.SubElement(paragraph, "span", {"class": "ocr_line", "id": f"line_1_{number}",
                                                     "title": "bbox " + " ".join(map(str, _extent(words)))})
            for word in words:
                count += 1
                title = (f"bbox {' '.join(map(str, word['box']))}; x_wconf {max(0, round(word['confidence']))}; "
                         f"x_hidden {word['hidden']:.4g}; x_source {word['source']}")
                ET.SubElement(line, "span", {"class": "ocrx_word", "id": f"word_1_{count}", "title": title}).text = \
                    word["text"]
    doctype = ('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
               '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n')
    return _serialise(html, doctype)


def _alto(tag: str) -> str:
    return f"{{{ALTO_NS}}}{tag}"


def _position(element: ET.Element, box) -> None:
    x0, y0, x1, y1 = box
    element.attrib.update(HPOS=str(x0), VPOS=str(y0), WIDTH=str(max(0, x1 - x0)), HEIGHT=str(max(0, y1 - y0)))


def _processing(description: ET.Element, step_id: str, category: str, what: str, name: str, software: str) -> None:
    step = ET.SubElement(description, _alto("Processing"), {"ID": step_id})
    ET.SubElement(step, _alto("processingCategory")).text = category
    ET.SubElement(step, _alto("processingStepDescription")).text = what
    program = ET.SubElement(step, _alto("processingSoftware"))
    ET.SubElement(program, _alto("softwareName")).text = name
    ET.SubElement(program, _alto("softwareVersion")).text = software


def to_alto(record: dict, image_name: str, page_number: int = 0) -> str:
    """The ALTO 4 page of a result's JSON record, read from `image_name` (its page `page_number`, from 0)."""
    ET.register_namespace("", ALTO_NS)
    ET.register_namespace("xsi", XSI_NS)
    width, height = _size(record)
    alto = ET.Element(_alto("alto"), {f"{{{XSI_NS}}}schemaLocation": f"{ALTO_NS} {ALTO_SCHEMA}"})
    description = ET.SubElement(alto, _alto("Description"))
    ET.SubElement(description, _alto("MeasurementUnit")).text = "pixel"
    source = ET.SubElement(description, _alto("sourceImageInformation"))
    ET.SubElement(source, _alto("fileName")).text = image_name
    stages = record.get("stages", {})
    engine, _, settings = stages.get("ocr", "ocr").partition(" ")
    _processing(description, OCR_STEP, "contentGeneration", f"text recognition: {stages.get('ocr', engine)}",
                engine, settings.split(" ")[0] if settings else "")
    _processing(description, RESTORE_STEP, "contentGeneration",
                f"occluded text restored (detector {stages.get('detector')}, inpainter {stages.get('inpainter')}), "
                "then read", "ocr-restore", _version())
    if any(word["source"] == "language" for word in record["words"]):
        _processing(description, LANGUAGE_STEP, "contentGeneration",
                    f"a word partly hidden and weakly read, chosen by a language prior: {stages.get('language')}",
                    "ocr-restore", _version())
    layout = ET.SubElement(alto, _alto("Layout"))
    page = ET.SubElement(layout, _alto("Page"), {"ID": "page_1", "PHYSICAL_IMG_NR": str(page_number + 1),
                                                 "WIDTH": str(width), "HEIGHT": str(height)})
    space = ET.SubElement(page, _alto("PrintSpace"))
    _position(space, (0, 0, width, height))
    lines = _lines(record)
    if lines:
        block = ET.SubElement(space, _alto("TextBlock"), {"ID": "block_1"})
        _position(block, _extent(record["words"]))
        count = 0
        for number, words in enumerate(lines, 1):
            line = ET.SubElement(block, _alto("TextLine"), {"ID": f"line_{number}"})
            _position(line, _extent(words))
            for i, word in enumerate(words):
                if i:
                    gap = ET.SubElement(line, _alto("SP"))
                    before = words[i - 1]["box"]
                    gap.attrib.update(HPOS=str(before[2]), VPOS=str(before[1]),
                                      WIDTH=str(max(0, word["box"][0] - before[2])))
                count += 1
                string = ET.SubElement(line, _alto("String"), {"ID": f"string_{count}", "CONTENT": word["text"]})
                _position(string, word["box"])
                string.set("WC", f"{max(0.0, min(1.0, word['confidence'] / 100)):.2f}")
                string.set("PROCESSINGREFS", STEPS.get(word["source"], OCR_STEP))
    return _serialise(alto)


def write_formats(base: Path, record: dict, formats: tuple[str, ...], image_name: str, page: int | None = None) -> None:
    """`<base>.hocr` and/or `<base>.alto.xml`, as `formats` asks, each written atomically; `page`: a document's."""
    render = {"hocr": to_hocr, "alto": to_alto}
    for name in formats:
        write_text(base.with_name(base.name + SUFFIXES[name]), render[name](record, image_name, page or 0))
