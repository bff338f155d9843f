"""An OCRmyPDF plugin: each page's occluded text is restored before Tesseract reads it.

    ocrmypdf --plugin ocr_restore.ocrmypdf --restore-occluded in.pdf out.pdf

The text layer comes from the restored image; the visible page stays as scanned
unless --restore-visible. Installed, ocr-restore is also an entry-point plugin
(`ENTRY_POINT`), which OCRmyPDF loads on every run: without --restore-occluded it
does nothing, and the output is plain OCRmyPDF's. Each worker process builds its
pipeline once.
"""

import threading
import types

from ocrmypdf import hookimpl
from ocrmypdf.builtin_plugins import tesseract_ocr
from ocrmypdf.exceptions import BadArgsError
from PIL import Image

from .choices import DETECTORS, INPAINTERS
from .files import as_rgb

_pipelines = {}  # (detector, inpainter): this process's Pipeline
_lock = threading.Lock()  # OCRmyPDF may run pages in threads (--use-threads)


@hookimpl
def add_options(parser):
    if any("--restore-occluded" in action.option_strings for action in parser._actions):
        return  # this plugin is registered twice, by its entry point and by --plugin: its options are there
    group = parser.add_argument_group("ocr-restore", "Restore text that shapes partly cover before OCR")
    group.add_argument("--restore-occluded", action="store_true",
                       help="Find the shapes that cover text on each page and inpaint them before OCR; the text "
                            "layer comes from the restored page.")
    group.add_argument("--restore-detector", choices=("auto", *DETECTORS), default="auto",
                       help="ocr-restore's occluder detector (default: auto, the shipped model).")
    group.add_argument("--restore-inpainter", choices=("auto", *INPAINTERS), default="auto",
                       help="ocr-restore's inpainter (default: auto, the shipped PConv U-Net).")
    group.add_argument("--restore-visible", action="store_true",
                       help="Show the restored page too. OCRmyPDF only rasterises the visible page anew with "
                            "--force-ocr or a preprocessing option (--clean-final, --deskew, --remove-background); "
                            "without one, the visible page stays as scanned.")


def _restoring(options) -> bool:
    return bool(getattr(options, "restore_occluded", False))


@hookimpl
def check_options(options):
    if not _restoring(options):
        given = [flag for flag, default in (("restore_detector", "auto"), ("restore_inpainter", "auto"),
                                            ("restore_visible", False)) if getattr(options, flag, default) != default]
        if given:
            raise BadArgsError(f"--{given[0].replace('_', '-')} needs --restore-occluded")
        return
    _pipeline(options)  # here, in the main process: missing weights or Tesseract stop the run before any page


def _pipeline(options):
    from .pipeline import Pipeline

    key = (getattr(options, "restore_detector", "auto"), getattr(options, "restore_inpainter", "auto"))
    with _lock:
        if key not in _pipelines:
            _pipelines[key] = Pipeline(detector=key[0], inpainter=key[1])
        return _pipelines[key]


def _restore(options, image: Image.Image) -> Image.Image:
    """The restored page, with the input's `info` (OCRmyPDF reads its dpi)."""
    page = as_rgb(image, getattr(image, "filename", "") or "the OCRmyPDF page")  # its errors name the file
    restored = Image.fromarray(_pipeline(options).restore(page).restored)
    restored.info = dict(image.info)
    return restored


@hookimpl
def filter_ocr_image(page, image):
    if not _restoring(page.options):
        return None  # the next implementation, OCRmyPDF's own, runs as if this plugin were not there
    # this hook is firstresult: OCRmyPDF's own, which downsamples what Tesseract cannot take, runs only if called
    return tesseract_ocr.filter_ocr_image(page, _restore(page.options, image))


@hookimpl
def filter_page_image(page, image_filename):
    if not (_restoring(page.options) and getattr(page.options, "restore_visible", False)):
        return None  # firstresult too: another plugin's may run
    with Image.open(image_filename) as image:
        image.load()
        restored = _restore(page.options, image)
    save = {"dpi": image.info["dpi"]} if "dpi" in image.info else {}
    restored.save(image_filename, format=image.format or "PNG", **save)
    return image_filename


# What the `ocrmypdf` entry point registers: the same hooks as another object than this module, which pluggy
# refuses to register twice, so that `--plugin ocr_restore.ocrmypdf` works beside the installed entry point.
ENTRY_POINT = types.SimpleNamespace(add_options=add_options, check_options=check_options,
                                    filter_ocr_image=filter_ocr_image, filter_page_image=filter_page_image)
