"""Reading images, masks and transcripts; writing outputs atomically.

Every read error names the file and the problem; every write goes to a temporary
file first and is renamed into place, so a killed run never leaves half a file.
"""

import contextlib
import os
import secrets
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputFileError

__all__ = [
    "IMAGE_SUFFIXES",
    "read_image",
    "read_mask",
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
# Pillow's decompression-bomb guard stops at ~179 Mpx; an A0 scan at 600 dpi is ~560 Mpx.
MAX_IMAGE_PIXELS = 600_000_000


def _open(path: Path) -> Image.Image:
    """Decode `path` fully with Pillow, turning every failure into an InputFileError."""
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if not path.is_file():
        raise InputFileError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow reads its guard from this global when it opens
            image = Image.open(path)
            image.load()
    except UnidentifiedImageError:
        raise InputFileError(
            f"{path}: not an image in a supported format (PNG, JPEG, TIFF, BMP, WebP)"
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputFileError(f"{path}: truncated or corrupt image ({e})") from None
    return image


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale 16-bit and float samples to 8 bits, keeping the full range."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        top = 1.0 if array.max(initial=0) <= 1.0 else 65535.0
        return np.clip(array / top * 255 + 0.5, 0, 255).astype(np.uint8)
    top = 255 if array.max(initial=0) <= 255 else 65535
    return (array.astype(np.float64) * (255 / top) + 0.5).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read any common image file as uint8 HxWx3 RGB.

    EXIF orientation is applied; transparency is composited over white (a cut-out
    scan has paper behind it); palette, grayscale, CMYK and 16-bit images are
    converted.
    """
    path = Path(path)
    image = _open(path)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the user their image
        pass
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = _to_uint8(np.asarray(image))
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask file as bool HxW; any non-zero sample means occluded.

    With `shape` (H, W), a mask of another size is an InputFileError naming both sizes.
    """
    path = Path(path)
    image = _open(path)
    array = np.asarray(image.convert("L") if image.mode in ("P", "CMYK", "YCbCr") else image)
    mask = array.any(axis=2) if array.ndim == 3 else array != 0
    if shape is not None and mask.shape != tuple(shape):
        raise InputFileError(
            f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}; "
            "give a mask of the image's size"
        )
    return mask


def read_transcripts(source: str | Path) -> dict[str, str]:
    """Ground truth by image stem, from a TSV (`name<TAB>text`, `\\n` for line breaks) or a folder of `*.gt.txt`."""
    source = Path(source)
    if source.is_dir():
        return {
            p.name[: -len(".gt.txt")]: p.read_text(encoding="utf-8").rstrip("\n")
            for p in sorted(source.rglob("*.gt.txt"))
        }
    if not source.is_file():
        raise InputFileError(f"{source}: transcript file or folder not found")
    truth = {}
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
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
    return sidecar.read_text(encoding="utf-8").rstrip("\n") if sidecar.is_file() else None


def find_transcript(image_path: Path, gt: Path | None = None) -> str | None:
    """The transcript for `image_path`: `gt` (a plain transcript, a TSV or a folder of sidecars keyed by stem)
    or a `<stem>.gt.txt` beside the image."""
    if gt is None:
        return read_sidecar(image_path)
    if gt.is_dir() or gt.suffix.lower() == ".tsv":
        return read_transcripts(gt).get(image_path.stem)
    if not gt.is_file():
        raise InputFileError(f"{gt}: transcript file not found")
    return gt.read_text(encoding="utf-8").rstrip("\n")


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
        if not cv2.imwrite(str(tmp), bgr):
            raise OSError(f"{path}: could not write image")


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a bool mask as an 8-bit PNG, 255 = occluded."""
    write_image(path, mask.astype(np.uint8) * 255)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def find_images(folder: str | Path, exclude: Path | None = None) -> list[Path]:
    """Image files under `folder`, recursively and sorted, skipping hidden files and `exclude`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"{folder}: folder not found")
    exclude = exclude.resolve() if exclude else None
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith(".") or not path.is_file():
            continue
        if exclude and path.resolve().is_relative_to(exclude):
            continue
        found.append(path)
    return found
