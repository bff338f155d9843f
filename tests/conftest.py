"""Fixtures that render their own small text images, so tests need no data files."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LINE = "The quick brown fox 1234"


def render_line(text: str = LINE, size: int = 32, font_file: str = FONT) -> np.ndarray:
    """Black text on white paper, uint8 RGB, with a margin of half the font size."""
    font = ImageFont.truetype(font_file, size)
    x0, y0, x1, y1 = font.getbbox(text)
    margin = size // 2
    image = Image.new("RGB", (x1 - x0 + 2 * margin, y1 - y0 + 2 * margin), "white")
    ImageDraw.Draw(image).text((margin - x0, margin - y0), text, font=font, fill="black")
    return np.asarray(image).copy()


def render_lines(*texts: str, size: int = 32) -> np.ndarray:
    """`render_line` of each text, stacked and padded on the right with paper to the widest."""
    lines = [render_line(text, size) for text in texts]
    width = max(line.shape[1] for line in lines)
    return np.concatenate([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines])


def speckled_word(text: str, size: int, specks: int, grey: int) -> np.ndarray:
    """`text` cut to its letters' rows, so that they fill the crop as on a tight crop of a sign, on a ground of
    `specks` random dots of `grey` (a plaque's grain)."""
    word = render_line(text, size)
    rows = np.flatnonzero((word < 128).any(axis=(1, 2)))
    crop = word[rows[0] - 4: rows[-1] + 5].copy()
    rng = np.random.default_rng(0)
    for x, y in zip(rng.integers(0, crop.shape[1], specks), rng.integers(0, crop.shape[0], specks)):
        cv2.circle(crop, (int(x), int(y)), int(rng.integers(1, 3)), (grey, grey, grey), -1)
    return crop


def stroke_over(image: np.ndarray, colour=(200, 30, 30), thickness: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A diagonal marker stroke across the text; returns the occluded image and its exact mask."""
    occluded = image.copy()
    h, w = image.shape[:2]
    cv2.line(occluded, (w // 5, h - 4), (4 * w // 5, 4), colour, thickness)
    return occluded, (occluded != image).any(axis=2)


@pytest.fixture
def line_image() -> np.ndarray:
    return render_line()


@pytest.fixture
def occluded_folder(tmp_path: Path) -> Path:
    """Three occluded line images, one in a subfolder, each with a `.gt.txt` sidecar, a mask and a clean copy."""
    root = tmp_path / "in"
    for relative, text in [("a", "Hello world 42"), ("b", "Partial convolution"), ("sub/c", "Receipt total 9.99")]:
        clean = render_line(text)
        occluded, mask = stroke_over(clean)
        for folder, array in [(root, occluded), (tmp_path / "clean", clean), (tmp_path / "masks", mask.astype(np.uint8) * 255)]:
            path = folder / f"{relative}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path)
        (root / f"{relative}.gt.txt").write_text(text + "\n")
    return root
