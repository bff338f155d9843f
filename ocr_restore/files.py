"""Reading images, masks and transcripts; writing outputs atomically.

Every read error names the file and the problem; every write goes to a temporary
file first and is renamed into place, so a killed run never leaves half a file.
"""

import contextlib
import os
import secrets
import shutil
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .choices import DPI
from .errors import InputFileError

__all__ = [
    "IMAGE_SUFFIXES",
    "INPUT_SUFFIXES",
    "read_image",
    "as_rgb",
    "page_count",
    "read_page",
    "page_stem",
    "pages",
    "document_text",
    "read_mask",
    "as_mask",
    "check_memory",
    "read_transcripts",
    "read_sidecar",
    "find_transcript",
    "atomic_path",
    "write_image",
    "write_mask",
    "write_text",
    "find_images",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
INPUT_SUFFIXES = (*IMAGE_SUFFIXES, ".pdf")  # and multi-page TIFFs: each page one image
# Pillow's decompression-bomb guard stops at ~179 Mpx; an A0 scan at 600 dpi is ~560 Mpx.
MAX_IMAGE_PIXELS = 600_000_000
# The pipeline's memory bound: at its peak (the detector's, with the page, its two probability maps at the
# page's size and the maps at the model's scale, capped by detect.MAX_MODEL_PIXELS) a page takes about this
# many bytes a pixel beside the process's own: a 20000 x 30000 page peaked at 7.23 GiB (tests/huge_page.py).
PEAK_BYTES_PER_PIXEL = 13
MEMORY_BOUND = 8 * 2**30  # what a page up to MAX_IMAGE_PIXELS takes at most, the process's own included


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if not path.is_file():
        raise InputFileError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: file is empty")


def _open(path: Path, frame: int = 0) -> Image.Image:
    """Decode `path` (its `frame`-th page) fully with Pillow, turning every failure into an InputFileError."""
    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow reads its guard from this global when it opens
            image = Image.open(path)
            if frame:
                image.seek(frame)
            image.load()
    except UnidentifiedImageError:
        raise InputFileError(
            f"{path}: not an image in a supported format (PNG, JPEG, TIFF, BMP, WebP)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputFileError(f"{path}: over the pipeline's limit of {MAX_IMAGE_PIXELS:,} pixels, which keeps it within "
                             f"{MEMORY_BOUND / 2**30:.0f} GiB ({e}); split the page") from None
    except MemoryError:
        raise InputFileError(f"{path}: too large to decode in the memory available") from None
    except Exception as e:
        # Pillow's format plugins parse headers in Python and raise whatever their parser hits (struct.error,
        # EOFError, KeyError, ZeroDivisionError...): any failure to decode is the file's, never the caller's
        raise InputFileError(f"{path}: truncated or corrupt image ({type(e).__name__}: {e})") from None
    if image.width == 0 or image.height == 0:
        raise InputFileError(f"{path}: the image is {image.width}x{image.height}, without pixels")
    return image


_DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # more than 8 bits a sample: scaled to 8
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_STRIP_PIXELS = 2**22  # converted a strip of this many pixels at a time: the page itself is copied once


def _to_uint8(array: np.ndarray, top: float) -> np.ndarray:
    """Scale samples from [0, top] to 8 bits; out-of-range samples (negative, NaN, beyond `top`) are clipped."""
    scaled = array.astype(np.float32)
    scaled *= 255 / top
    scaled += 0.5
    np.nan_to_num(scaled, copy=False, nan=0.0)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def _strips(image: Image.Image):
    """The image in horizontal strips, top to bottom."""
    rows = max(1, _STRIP_PIXELS // max(1, image.width))
    for top in range(0, image.height, rows):
        yield top, image.crop((0, top, image.width, min(top + rows, image.height)))


def _rgb(image: Image.Image) -> np.ndarray:
    """uint8 HxWx3, converted strip by strip into one array: whole-page conversions would each copy the page
    (2.4 GB at the reader's limit) and Pillow's array export copies it twice more."""
    out = np.empty((image.height, image.width, 3), np.uint8)
    if image.mode in _DEEP_MODES:  # 16-bit, 32-bit and float grey: the full range, as 8 bits
        if image.mode == "F":
            peak = max((np.nanmax(np.asarray(s), initial=0) for _, s in _strips(image)), default=0)
            top = 1.0 if peak <= 1.0 else 65535.0
        else:
            top = 255 if image.getextrema()[1] <= 255 else 65535
        for y, strip in _strips(image):
            out[y:y + strip.height] = _to_uint8(np.asarray(strip), top)[..., None]
        return out
    for y, strip in _strips(image):
        if strip.mode == "P":
            strip = strip.convert("RGBA")
        if strip.mode in _ALPHA_MODES:  # a cut-out scan has paper behind it
            white = Image.new("RGBA", strip.size, (255, 255, 255, 255))
            strip = Image.alpha_composite(white, strip if strip.mode == "RGBA" else strip.convert("RGBA"))
        out[y:y + strip.height] = np.asarray(strip if strip.mode == "RGB" else strip.convert("RGB"))
    return out


def read_image(path: str | Path) -> np.ndarray:
    """Read any common image file as uint8 HxWx3 RGB.

    EXIF orientation is applied; transparency is composited over white (a cut-out
    scan has paper behind it); palette, grayscale, CMYK and 16-bit images are
    converted, strip by strip: a 600 Mpx page takes its decoded self and the array.
    """
    return as_rgb(_open(Path(path)), Path(path))


def as_rgb(image: Image.Image, path: str | Path) -> np.ndarray:
    """A decoded image as uint8 HxWx3 RGB, as `read_image` gives it; errors name `path`."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # a broken EXIF block should not cost the user their image
        pass
    try:
        return _rgb(image)
    except ValueError as e:  # a mode Pillow decodes but cannot convert
        raise InputFileError(f"{path}: image mode {image.mode} cannot be converted to RGB ({e}); "
                             "save it as RGB or grayscale") from None


def page_count(path: str | Path) -> int | None:
    """The pages of a document: a PDF, or a TIFF of more than one page. None: `path` is one image (or not
    readable, which reading it says)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        with _pdf(path) as pdf:
            return len(pdf)
    if suffix in (".tif", ".tiff"):
        try:
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
        except Exception:
            return None
        return frames if frames > 1 else None
    return None


def read_page(path: str | Path, index: int, dpi: int = DPI) -> np.ndarray:
    """Page `index` (from 0) of a document as uint8 HxWx3 RGB; a PDF's rasterised at `dpi`."""
    path = Path(path)
    if path.suffix.lower() != ".pdf":
        return as_rgb(_open(path, frame=index), path)
    with _pdf(path) as pdf:
        page = pdf[index]
        width, height = (round(side * dpi / 72) for side in page.get_size())  # PDF sizes are in points
        if width * height > MAX_IMAGE_PIXELS:
            raise InputFileError(f"{path}: page {index + 1} at {dpi} dpi is {width}x{height} pixels, over the "
                                 f"pipeline's limit of {MAX_IMAGE_PIXELS:,}; give a lower --dpi")
        try:
            bitmap = page.render(scale=dpi / 72, rev_byteorder=True)  # RGB, not PDFium's BGR
            return np.array(bitmap.to_numpy()[..., :3])
        except Exception as e:
            raise InputFileError(f"{path}: page {index + 1} cannot be rendered ({type(e).__name__}: {e})") from None


_PDFIUM = threading.Lock()  # PDFium is not thread-safe, and a Dask worker may run tasks in threads


@contextlib.contextmanager
def _pdf(path: Path):
    """The open PDF, under PDFium's lock; an encrypted or broken file is an InputFileError."""
    import pypdfium2

    _check_file(path)
    with _PDFIUM:
        try:
            pdf = pypdfium2.PdfDocument(str(path))
        except pypdfium2.PdfiumError as e:
            if "password" in str(e).lower():
                raise InputFileError(f"{path}: the PDF is encrypted; decrypt it first, for example with "
                                     "qpdf --decrypt --password=PASSWORD in.pdf out.pdf") from None
            raise InputFileError(f"{path}: not a readable PDF ({e})") from None
        try:
            yield pdf
        finally:
            pdf.close()


def document_text(pages: list[str]) -> str:
    """A document's text: its pages', a form feed between them, as Tesseract writes a multi-page text."""
    return "\n\f".join(pages) + "\n"


def page_stem(stem: str, index: int | None) -> str:
    """The outputs' stem of a document's page `index` (from 0): scan.p0001 for the first page of scan.pdf;
    `stem` itself for an image (None)."""
    return stem if index is None else f"{stem}.p{index + 1:04d}"


def pages(path: str | Path) -> list[int | None]:
    """What to read of `path`: each page of a document (`page_count`), or [None], the one image."""
    count = page_count(path)
    return [None] if count is None else list(range(count))


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask file as bool HxW; any non-zero sample means occluded.

    With `shape` (H, W), a mask of another size is an InputFileError naming both sizes.
    """
    path = Path(path)
    image = _open(path)
    try:
        if image.mode == "LAB":  # black is L=0, a=b=128: the lightness alone says what is drawn
            image = image.getchannel("L")
        elif image.mode in ("P", "CMYK", "YCbCr", "HSV"):
            image = image.convert("L")
        array = np.asarray(image)
    except ValueError as e:
        raise InputFileError(f"{path}: image mode {image.mode} cannot be read as a mask ({e}); "
                             "save it as a grayscale PNG") from None
    mask = array.any(axis=2) if array.ndim == 3 else array != 0
    if shape is not None and mask.shape != tuple(shape):
        raise InputFileError(
            f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}; "
            "give a mask of the image's size"
        )
    return mask


def as_mask(mask, shape: tuple[int, int]) -> np.ndarray:
    """An array given as a mask (by the Python API) as bool HxW, non-zero (NaN too) = occluded, as `read_mask`
    reads files; an array of another shape, or not numeric, is an InputFileError that says what to give."""
    mask = np.asarray(mask)
    height, width = shape
    if mask.shape != (height, width):
        raise InputFileError(f"the mask's shape is {mask.shape} but the image is {width}x{height}: "
                             f"give a bool array of shape ({height}, {width}), True = occluded")
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind not in "iufc":
        raise InputFileError(f"the mask's dtype is {mask.dtype}: give a bool or numeric array, non-zero = occluded")
    return mask != 0


def _available_memory() -> int | None:
    """Bytes this process may still take: the kernel's MemAvailable, less where a cgroup (a container) caps
    it; None where neither can be read."""
    available = []
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/meminfo") as meminfo:
            available.append(int(next(line for line in meminfo if line.startswith("MemAvailable:")).split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            available.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    return min(available) if available else None


def check_memory(shape: tuple[int, ...]) -> None:
    """Refuse, before any work, an image over MAX_IMAGE_PIXELS, or one whose peak would not fit in the memory
    available now: an InputFileError that says what to do, where the work would end in an out-of-memory kill."""
    height, width = shape[:2]
    if height * width > MAX_IMAGE_PIXELS:
        raise InputFileError(f"the image is {width}x{height}, {height * width:,} pixels: the pipeline takes up to "
                             f"{MAX_IMAGE_PIXELS:,}, within {MEMORY_BOUND / 2**30:.0f} GiB; split it")
    need, available = height * width * PEAK_BYTES_PER_PIXEL, _available_memory()
    if available is not None and need > available:
        raise InputFileError(f"the image is {width}x{height}: restoring it takes about {need / 2**30:.1f} GiB more, "
                             f"and {max(available, 0) / 2**30:.1f} GiB is available; free memory, run fewer "
                             "--workers, or split it")


def _read_text(path: Path) -> str:
    """The UTF-8 text of a transcript file; an unreadable or undecodable file is an InputFileError."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                             "save the transcript as UTF-8") from None
    except OSError as e:
        raise InputFileError(f"{path}: cannot read the transcript ({e.strerror or e})") from None


def read_transcripts(source: str | Path) -> dict[str, str]:
    """Ground truth by image stem, from a TSV (`name<TAB>text`, `\\n` for line breaks) or a folder of `*.gt.txt`."""
    source = Path(source)
    if source.is_dir():
        return {
            p.name[: -len(".gt.txt")]: _read_text(p).rstrip("\n")
            for p in sorted(source.rglob("*.gt.txt"))
        }
    if not source.is_file():
        raise InputFileError(f"{source}: transcript file or folder not found")
    truth = {}
    for number, line in enumerate(_read_text(source).splitlines(), 1):
        if not line.strip():
            continue
        name, sep, text = line.partition("\t")
        if not sep:
            raise InputFileError(f"{source}:{number}: expected 'name<TAB>text'")
        truth[Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name] = text.replace("\\n", "\n")
    return truth


def read_sidecar(image_path: Path) -> str | None:
    """The `<stem>.gt.txt` transcript beside an image (the tesstrain convention), or None."""
    sidecar = image_path.with_name(image_path.stem + ".gt.txt")
    return _read_text(sidecar).rstrip("\n") if sidecar.is_file() else None


def find_transcript(image_path: Path, gt: Path | None = None) -> str | None:
    """The transcript for `image_path`: `gt` (a plain transcript, a TSV or a folder of sidecars keyed by stem)
    or a `<stem>.gt.txt` beside the image."""
    if gt is None:
        return read_sidecar(image_path)
    if gt.is_dir() or gt.suffix.lower() == ".tsv":
        return read_transcripts(gt).get(image_path.stem)
    if not gt.is_file():
        raise InputFileError(f"{gt}: transcript file not found")
    return _read_text(gt).rstrip("\n")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path` and rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part{path.suffix}")
    # created with the usual permissions (0666 less the umask), unlike mkstemp's private ones
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB (HxWx3) or gray (HxW) uint8 image; the format follows the suffix."""
    path = Path(path)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), bgr):  # OpenCV says no more than that: the free space tells a full disk
            free = shutil.disk_usage(tmp.parent).free
            raise OSError(f"{path}: could not write the image ({free / 2**20:.1f} MiB free on its disk)")


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a bool mask as an 8-bit PNG, 255 = occluded."""
    write_image(path, mask.astype(np.uint8) * 255)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def find_images(folder: str | Path, exclude: Path | None = None, documents: bool = False) -> list[Path]:
    """Image files (with `documents`, PDFs too) under `folder`, recursively and sorted, skipping hidden files and
    `exclude`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"{folder}: folder not found")
    exclude = exclude.resolve() if exclude else None
    found, suffixes = [], INPUT_SUFFIXES if documents else IMAGE_SUFFIXES
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in suffixes or path.name.startswith(".") or not path.is_file():
            continue
        if exclude and path.resolve().is_relative_to(exclude):
            continue
        found.append(path)
    return found
