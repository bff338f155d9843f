"""The OCRmyPDF plugin, as OCRmyPDF's own suite tests plugins: `ocrmypdf.ocr(..., plugins=[...])` on a real PDF."""

import shutil

import numpy as np
import pytest
from PIL import Image

from ocr_restore.metrics import score

from .conftest import render_lines, stroke_over

ocrmypdf = pytest.importorskip("ocrmypdf")
pikepdf = pytest.importorskip("pikepdf")
import pluggy  # noqa: E402  (OCRmyPDF's)

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")

LINES = ("Partial convolution", "restores hidden text")
PLUGIN = "ocr_restore.ocrmypdf"
CLASSICAL = {"restore_detector": "classical", "restore_inpainter": "telea"}  # no weights needed, and fast


@pytest.fixture(scope="module")
def occluded_pdf(tmp_path_factory):
    """A scanned page at 150 dpi: two lines under a red marker stroke, which Tesseract alone misreads."""
    path = tmp_path_factory.mktemp("pdf") / "occluded.pdf"
    Image.fromarray(stroke_over(render_lines(*LINES, size=40))[0]).save(path, resolution=150)
    return path


def ocr(source, out, **options):
    sidecar = out.with_suffix(".txt")
    ocrmypdf.ocr(source, out, sidecar=sidecar, output_type="pdf", optimize=0, progress_bar=False, **options)
    return sidecar.read_text()


def page_images(path):
    """The raw bytes of every image the PDF's pages show."""
    with pikepdf.open(path) as pdf:
        return [image.read_raw_bytes() for page in pdf.pages for image in page.get_images().values()]


def red_pixels(path):
    with pikepdf.open(path) as pdf:
        (image,) = pdf.pages[0].get_images().values()
        rgb = np.asarray(pikepdf.PdfImage(image).as_pil_image().convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).sum())


def cer(text):
    return score("\n".join(LINES), text.replace("\f", "").strip()).cer


def test_the_text_layer_comes_from_the_restored_page(occluded_pdf, tmp_path):
    plain = ocr(occluded_pdf, tmp_path / "plain.pdf")
    restored = ocr(occluded_pdf, tmp_path / "restored.pdf", plugins=[PLUGIN], restore_occluded=True, **CLASSICAL)
    assert cer(restored) < cer(plain), (restored, plain)
    assert page_images(tmp_path / "restored.pdf") == page_images(occluded_pdf)  # the visible page, as scanned


def test_without_the_flag_the_plugin_does_nothing(occluded_pdf, tmp_path, monkeypatch):
    with monkeypatch.context() as without_entry_points:  # plain OCRmyPDF: not even the installed entry point
        without_entry_points.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", lambda self, group: 0)
        plain = ocr(occluded_pdf, tmp_path / "plain.pdf")
    loaded = ocr(occluded_pdf, tmp_path / "loaded.pdf", plugins=[PLUGIN])  # and its entry point, if installed
    assert loaded == plain
    assert page_images(tmp_path / "loaded.pdf") == page_images(tmp_path / "plain.pdf")


def test_restore_visible_shows_the_restored_page_when_ocrmypdf_rasterises_it(occluded_pdf, tmp_path):
    for name, visible in (("scanned", False), ("visible", True)):  # --force-ocr: the page is rasterised anew
        ocr(occluded_pdf, tmp_path / f"{name}.pdf", plugins=[PLUGIN], restore_occluded=True, restore_visible=visible,
            force_ocr=True, **CLASSICAL)
    scanned, visible = (red_pixels(tmp_path / f"{name}.pdf") for name in ("scanned", "visible"))
    assert scanned > 500 and visible < scanned / 10  # the marker stroke is gone from the page shown


def test_its_options_need_the_flag(occluded_pdf, tmp_path):
    with pytest.raises(ocrmypdf.exceptions.BadArgsError, match="--restore-inpainter needs --restore-occluded"):
        ocr(occluded_pdf, tmp_path / "out.pdf", plugins=[PLUGIN], restore_inpainter="telea")
