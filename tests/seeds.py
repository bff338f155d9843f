"""Small valid files in every format and mode the reader takes: the seeds that tests/test_fuzz.py mutates and
the seed corpus of `make fuzz`. Made here, so the repository holds no binary test files."""

import io

import numpy as np
from PIL import Image

SEED_SHAPE = (12, 17)  # (H, W) of every seed image


def seed_files() -> dict[str, bytes]:
    """PNG, JPEG, TIFF, BMP, WebP and GIF files in the modes the reader converts, and two transcripts, by name."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (*SEED_SHAPE, 3), dtype=np.uint8))
    gray = np.asarray(rgb.convert("L"), np.uint16) * 257
    out = {}

    def save(name, image, fmt, **options):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        out[name] = buffer.getvalue()

    for mode in ("RGB", "L", "1", "P", "RGBA", "LA", "CMYK"):
        save(f"{mode}.tif", rgb.convert(mode), "TIFF")
        if mode != "CMYK":
            save(f"{mode}.png", rgb.convert(mode), "PNG")
    for mode, dtype in (("I;16", np.uint16), ("I", np.int32), ("F", np.float32)):
        save(f"{mode}.tif", Image.fromarray(gray.astype(dtype)), "TIFF")
    save("I;16.png", Image.fromarray(gray), "PNG")
    save("rgb.jpg", rgb, "JPEG", quality=90)
    save("gray.jpg", rgb.convert("L"), "JPEG")
    save("cmyk.jpg", rgb.convert("CMYK"), "JPEG")
    save("progressive.jpg", rgb, "JPEG", progressive=True)
    exif = rgb.getexif()
    exif[0x0112] = 6  # rotated: the reader applies EXIF orientation
    save("rotated.jpg", rgb, "JPEG", exif=exif)
    save("lzw.tif", rgb, "TIFF", compression="tiff_lzw")
    save("deflate.tif", rgb, "TIFF", compression="tiff_adobe_deflate")
    save("g4.tif", rgb.convert("1"), "TIFF", compression="group4")
    save("rgb.bmp", rgb, "BMP")
    save("p.bmp", rgb.convert("P"), "BMP")
    save("lossless.webp", rgb, "WEBP", lossless=True)
    save("rgba.webp", rgb.convert("RGBA"), "WEBP")
    save("p.gif", rgb.convert("P"), "GIF")
    out["gt.tsv"] = "a.png\tfirst line\\nsecond\nb\tother\n\n".encode()
    out["gt.txt"] = "Receipt total 9.99\n".encode()
    return out
