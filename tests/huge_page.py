"""The memory bound's measurement: a 20000 x 30000 page (600 Mpx, the reader's limit) through the pipeline.

    python -m tests.huge_page make /tmp/page.png    # an A4 page at 300 dpi, 10-pt words under 40 strokes, tiled 8 x 8
    /usr/bin/time -v python -m tests.huge_page restore /tmp/page.png   # read, detect, inpaint: the peak RSS
    /usr/bin/time -v ocr-restore /tmp/page.png -o /tmp/out             # and the two readings

`restore` prints each stage's seconds and the process's peak RSS after it. On 2 cores shared with a
training run (2026-12-01): restore peaked at 7.23 GiB (detect 1068 s, inpaint 285 s); the full command
peaked at 7.31 GiB in Python, its two Tesseracts at 3.1 GiB each, and had not finished reading after an hour.
"""

import resource
import sys
import time

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def make(path: str) -> None:
    rng = np.random.default_rng(7)
    words = open("/usr/share/dict/words").read().split()  # wamerican, which `make setup` installs
    font = ImageFont.truetype(FONT, 42)  # 10 pt at 300 dpi
    page = Image.new("RGB", (2500, 3750), "white")
    draw = ImageDraw.Draw(page)
    for y in range(150, 3600, 62):
        draw.text((150, y), " ".join(rng.choice(words, 14)), font=font, fill="black")
    a4 = np.asarray(page).copy()
    for _ in range(40):  # marker strokes of random colours and widths
        x0, y0 = rng.integers(100, 2400), rng.integers(100, 3650)
        cv2.line(a4, (int(x0), int(y0)), (int(x0 + rng.integers(-300, 300)), int(y0 + rng.integers(-80, 80))),
                 tuple(int(c) for c in rng.integers(0, 200, 3)), int(rng.integers(6, 20)))
    cv2.imwrite(path, cv2.cvtColor(np.tile(a4, (8, 8, 1)), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def restore(path: str) -> None:
    from ocr_restore import Pipeline, read_image

    pipeline = Pipeline()
    start = time.perf_counter()
    image = read_image(path)
    print(f"read {image.shape[1]}x{image.shape[0]} in {time.perf_counter() - start:.0f} s, peak {_peak_gib():.2f} GiB",
          flush=True)
    restoration = pipeline.restore(image)
    print(f"detector {pipeline.detector.name}, em {restoration.em:.1f} px, {restoration.mask.mean():.1%} masked; "
          + ", ".join(f"{k} {v:.0f} s" for k, v in restoration.seconds.items()) + f"; peak {_peak_gib():.2f} GiB")


if __name__ == "__main__":
    {"make": make, "restore": restore}[sys.argv[1]](sys.argv[2])
