"""Clean text images with their transcript, per-character boxes and per-character ink.

Three kinds, each drawn the way such text reaches a user:
- docs: lines and paragraphs of scanned or photographed pages;
- receipts: thermal or dot-matrix receipt lines with faint ink;
- scene: word crops on painted, coloured or textured backgrounds with outlines, shadows and perspective,
  cut by a box around the ink.

A sample is made in two stages so that occluders can sit on the page like real ones:
`page` (paper, ink and geometry) and `degradation`, the seeded photometric
capture (light, blur, noise, binarisation, JPEG) that turns the page into `image`.
occlude.py paints on `page` and applies the same degradation, so the clean and the
occluded image differ exactly where an occluder changed the page.

Each character is drawn alone at the pen position the whole-line layout gives it
(the sum of the advances before it), which reproduces the line and tells which
pixels belong to which character.
"""

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw

from . import corpus
from .fonts import FONTS, Font, fonts_with, load_font

__all__ = ["KINDS", "INK_LEVEL", "Degradation", "TextImage", "render", "draw_text", "from_image", "otsu_ink",
           "ink_components"]

KINDS = ("docs", "receipts", "scene")
INK_LEVEL = 96  # glyph coverage (of 255) above which a pixel is that character's ink


# ---------------------------------------------------------------- capture


@dataclass
class Degradation:
    """The photometric part of capturing a page: seeded, so applying it twice gives the same noise."""

    seed: int  # seeds the sensor noise and speckle
    light: np.ndarray | None = None  # small multiplicative light field (h x w x 3), stretched over the image
    blur: float = 0.0  # Gaussian blur sigma in pixels (optics, scanner MTF)
    noise: float = 0.0  # sensor noise sigma in grey levels
    colour_noise: bool = False  # independent noise per channel (camera) rather than grey (scanner)
    threshold: float | None = None  # binarised scan: grey level splitting black from white
    speckle: float = 0.0  # salt-and-pepper probability of a binarised scan
    jpeg: int | None = None  # JPEG quality, None for lossless

    def apply(self, page: np.ndarray) -> np.ndarray:
        """Capture `page` (uint8 HxWx3) as the camera or scanner would."""
        rng = np.random.default_rng(self.seed)
        h, w = page.shape[:2]
        x = page.astype(np.float32)
        if self.light is not None:
            x *= cv2.resize(self.light, (w, h), interpolation=cv2.INTER_CUBIC)
        if self.blur > 0.25:
            x = cv2.GaussianBlur(x, (0, 0), self.blur)
        if self.noise > 0:
            x += rng.normal(0, self.noise, (h, w, 3 if self.colour_noise else 1)).astype(np.float32)
        if self.threshold is not None:
            black = x.mean(axis=2) < self.threshold
            if self.speckle > 0:
                black ^= rng.random((h, w)) < self.speckle
            x = np.where(black, np.float32(20), np.float32(245))[..., None].repeat(3, axis=2)
        image = np.clip(x + 0.5, 0, 255).astype(np.uint8)
        if self.jpeg is not None:
            _, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg])
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        return image


@dataclass
class TextImage:
    """A clean text image with its ground truth."""

    image: np.ndarray  # uint8 HxWx3 RGB: the page after capture (all scan and photo effects)
    text: str  # transcript, lines joined by "\n"
    # int32 Nx4 (x0, y0, x1, y1), x1 and y1 exclusive, one per non-space char of text in reading order;
    # all 0 for a char out of view (canvas mode)
    char_boxes: np.ndarray
    char_ink: np.ndarray  # int32 HxW: i + 1 on the ink of char i, 0 elsewhere
    text_height: float  # em size (font size) in pixels in `image`
    paper: tuple[int, int, int]  # RGB of the paper or background
    kind: str  # "docs", "receipts", "scene" or "real"
    page: np.ndarray  # uint8 HxWx3: the page before capture; occluders are painted here
    background: np.ndarray  # uint8 HxWx3: the page without its text (what an eraser uncovers)
    degradation: Degradation = field(default_factory=lambda: Degradation(0))  # page -> image


def from_image(image: np.ndarray, text_height: float, text: str = "") -> TextImage:
    """Wrap a real clean image (no ground-truth ink) so occlude() can paint on it.

    Its background is a median-filtered copy of the image, which removes strokes
    thinner than an em and so stands in for the paper under the text.
    """
    k = int(max(3, text_height * 0.6)) | 1
    small = max(1.0, k / 15)  # the median needs an odd kernel <= 255 and is slow when big: filter at a lower scale
    h, w = image.shape[:2]
    reduced = cv2.resize(image, (max(1, round(w / small)), max(1, round(h / small))), interpolation=cv2.INTER_AREA)
    background = cv2.resize(cv2.medianBlur(reduced, int(k / small) | 1), (w, h), interpolation=cv2.INTER_LINEAR)
    paper = tuple(int(v) for v in _median_colour(background))
    return TextImage(
        image=image, text=text, char_boxes=np.zeros((0, 4), np.int32), char_ink=np.zeros(image.shape[:2], np.int32),
        text_height=float(text_height), paper=paper, kind="real", page=image, background=background,
        degradation=Degradation(0),
    )


def otsu_ink(image: np.ndarray) -> np.ndarray:
    """bool HxW: the minority side of an Otsu split of the grey levels, the ink of a real text image
    whether it is dark on light or light on dark."""
    _, dark = cv2.threshold(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    dark = dark.view(bool)
    return dark if dark.sum() <= dark.size / 2 else ~dark


def ink_components(image: np.ndarray) -> np.ndarray:
    """int32 HxW: the connected components of `otsu_ink`, labelled 1..N, 0 elsewhere. They stand in for
    the characters of a real image, which has no per-character ink: letters that touch are one, and the
    dot of an i is one of its own."""
    _, labels = cv2.connectedComponents(otsu_ink(image).view(np.uint8), connectivity=8)
    return labels


# ---------------------------------------------------------------- glyphs and layout


@lru_cache(maxsize=200_000)
def _glyph(font: Font, size: int, char: str) -> tuple[np.ndarray, int, int, int]:
    """(coverage uint8 h x w, left, top, ink level): the glyph bitmap placed relative to the pen on the baseline."""
    ft = load_font(font, size)
    x0, y0, x1, y1 = ft.getbbox(char, anchor="ls")
    canvas = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)))
    ImageDraw.Draw(canvas).text((-x0, -y0), char, font=ft, fill=255, anchor="ls")
    alpha = np.asarray(canvas)
    # a hairline glyph of a light face may never reach INK_LEVEL; its ink is then its darker half
    return alpha, x0, y0, min(INK_LEVEL, int(alpha.max()) // 2)


@lru_cache(maxsize=200_000)
def _advance(font: Font, size: int, char: str) -> float:
    """Pen advance after `char` (the basic layout applies no kerning to these faces)."""
    return load_font(font, size).getlength(char)


def _pen_positions(font: Font, size: int, line: str, tracking: float = 0.0) -> np.ndarray:
    """x of the pen for each character of `line`, starting at 0, as a whole-line rendering places them."""
    advances = [_advance(font, size, char) + tracking for char in line]
    return np.concatenate([[0.0], np.cumsum(advances)])


@dataclass
class _Line:
    text: str
    x: np.ndarray  # pen x per char (len(text) + 1, the last is the line's end)
    baseline: float


def _line(font: Font, size: int, text: str, baseline: float, x0: float = 0.0, tracking: float = 0.0) -> _Line:
    return _Line(text, x0 + _pen_positions(font, size, text, tracking), baseline)


def _wrap(font: Font, size: int, words: list[str], width: float) -> list[str]:
    """Greedy word wrap to `width` pixels."""
    space = _advance(font, size, " ")
    lines, current, current_width = [], [], 0.0
    for word in words:
        word_width = _pen_positions(font, size, word)[-1]
        if current and current_width + space + word_width > width:
            lines.append(" ".join(current))
            current, current_width = [], 0.0
        current_width += (space if current else 0.0) + word_width
        current.append(word)
    return lines + [" ".join(current)] if current else lines


def _justify(font: Font, size: int, text: str, width: float, baseline: float, x0: float) -> _Line:
    """Stretch the spaces of `text` so the line fills `width`."""
    line = _line(font, size, text, baseline, x0)
    spaces = [i for i, c in enumerate(text) if c == " "]
    if spaces:
        extra = (width - (line.x[-1] - x0)) / len(spaces)
        line.x += np.cumsum([extra if c == " " else 0.0 for c in " " + text])[: len(text) + 1]
    return line


def draw_text(font: Font, size: int, lines: list[_Line], shape: tuple[int, int], offset=(0, 0)):
    """Draw every non-space char alone: coverage (float32 HxW, 0..1) and label map (int32, i + 1 = ink of char i)."""
    h, w = shape
    cover = np.zeros((h, w), np.uint8)
    label = np.zeros((h, w), np.int32)
    index = 0
    for line in lines:
        for char, x in zip(line.text, line.x):
            if char.isspace():
                continue
            index += 1
            alpha, left, top, ink = _glyph(font, size, char)
            gx, gy = int(round(x + offset[0])) + left, int(round(line.baseline + offset[1])) + top
            x0, y0, x1, y1 = max(gx, 0), max(gy, 0), min(gx + alpha.shape[1], w), min(gy + alpha.shape[0], h)
            if x0 >= x1 or y0 >= y1:
                continue
            a = alpha[y0 - gy: y1 - gy, x0 - gx: x1 - gx]
            c = cover[y0:y1, x0:x1]
            # a pixel belongs to the glyph that covers it most, as in the whole-line rendering
            wins = a > c
            c[wins] = a[wins]
            label[y0:y1, x0:x1][wins & (a > ink)] = index
    return cover.astype(np.float32) / 255, label


def _ink_extent(font: Font, size: int, line: _Line) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the glyph bitmaps of `line` as placed."""
    boxes = [
        (x + left, line.baseline + top, x + left + alpha.shape[1], line.baseline + top + alpha.shape[0])
        for char, x in zip(line.text, line.x)
        for alpha, left, top, _ in [_glyph(font, size, char)]
    ]
    return (*np.min(boxes, 0)[:2], *np.max(boxes, 0)[2:])


def _char_boxes(label: np.ndarray, n: int) -> np.ndarray:
    """Bounding boxes (x0, y0, x1, y1), exclusive ends, of each label 1..n; zeros where a label has no pixel."""
    ys, xs = np.nonzero(label)
    which = label[ys, xs] - 1
    big = np.iinfo(np.int32).max
    boxes = np.array([[big, big, -1, -1]] * n, np.int64).reshape(n, 4)
    np.minimum.at(boxes[:, 0], which, xs)
    np.minimum.at(boxes[:, 1], which, ys)
    np.maximum.at(boxes[:, 2], which, xs + 1)
    np.maximum.at(boxes[:, 3], which, ys + 1)
    boxes[boxes[:, 2] < 0] = 0
    return boxes.astype(np.int32)


# ---------------------------------------------------------------- colours and surfaces


def _smooth_field(rng, shape, cells: int, amplitude: float) -> np.ndarray:
    """Low-frequency noise (float32 HxW) around 0 with about `cells` blobs across the larger side."""
    h, w = shape
    gh, gw = max(2, round(cells * h / max(h, w)) + 1), max(2, round(cells * w / max(h, w)) + 1)
    return cv2.resize(rng.normal(0, amplitude, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _paper(rng, shape, base: np.ndarray, grain: float, blotch: float) -> np.ndarray:
    """Paper: a base colour with blotchy tone and fine grain (float32 HxWx3)."""
    tone = _smooth_field(rng, shape, int(rng.integers(2, 8)), blotch)
    fine = rng.normal(0, grain, shape).astype(np.float32) if grain > 0 else 0
    return base.astype(np.float32)[None, None] + (tone + fine)[..., None]


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (float32 0..255) from hue in degrees, saturation and value in 0..1."""
    pixel = np.array([[[h / 2, s * 255, v * 255]]], np.uint8)
    return cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _median_colour(image: np.ndarray) -> np.ndarray:
    """The per-channel median of an HxWx3 image: the colour of the paper or ground it mostly shows."""
    return np.median(image.reshape(-1, 3), 0)


def _luma(rgb) -> float:
    return float(np.dot(np.asarray(rgb, np.float32).reshape(-1, 3).mean(0), [0.299, 0.587, 0.114]))


def _paint(page: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    """Composite `colour` (RGB or HxWx3) over `page` with coverage `alpha` (HxW, 0..1)."""
    a = alpha[..., None]
    return page * (1 - a) + np.asarray(colour, np.float32) * a


def _pick_font(rng, fonts: tuple[Font, ...]) -> Font:
    """Regular faces are the commonest in print; bold and italic ones less so."""
    weights = np.array([0.35 ** len(f.tags & {"bold", "italic", "light"}) for f in fonts])
    return fonts[rng.choice(len(fonts), p=weights / weights.sum())]


# ---------------------------------------------------------------- the three kinds


@dataclass
class _Design:
    """What a kind function decides: font, lines and the content rectangle they sit in."""

    font: Font
    size: int
    lines: list[_Line]
    width: int  # content rectangle (text plus margins), the lines' coordinates are inside it
    height: int


def _block(font, size, texts, leading, x0=0.0, aligns=None, width=None, tracking=0.0) -> tuple[list[_Line], float]:
    """Lines stacked `leading` em apart, first baseline at the ascent; returns them and the block's width."""
    ascent = load_font(font, size).getmetrics()[0]
    lines = []
    for k, text in enumerate(texts):
        baseline = ascent + k * leading * size
        align = aligns[k] if aligns else "left"
        if align == "justify" and width:
            lines.append(_justify(font, size, text, width, baseline, x0))
            continue
        line = _line(font, size, text, baseline, x0, tracking)
        if align in ("center", "right") and width:
            line.x += (width - (line.x[-1] - x0)) / (2 if align == "center" else 1)
        lines.append(line)
    return lines, max((line.x[-1] for line in lines), default=0.0) - x0


def _place(lines: list[_Line], dx: float, dy: float) -> None:
    for line in lines:
        line.x += dx
        line.baseline += dy


def _fit_canvas(rng, lines, size, block_w, leading, canvas, single: bool) -> None:
    """Shift the block so text covers the canvas: sometimes with a visible margin, else cut at the edges."""
    h, w = canvas
    if rng.random() < 0.3 or block_w < w:
        dx = rng.uniform(0, max(1.0, min(w * 0.3, w - block_w * 0.5)))
    else:
        dx = -rng.uniform(0, block_w - w)
    if single:
        dy = h / 2 - lines[0].baseline + 0.3 * size + rng.uniform(-0.15, 0.15) * size
    else:
        dy = -rng.uniform(0, leading * size)
    _place(lines, dx, dy)


def _docs(rng, size: int, canvas) -> _Design:
    font = _pick_font(rng, FONTS)
    leading = rng.uniform(1.1, 1.6)
    single = rng.random() < (0.35 if canvas else 0.5)
    if canvas:
        h, w = canvas
        width = w + size * rng.uniform(0, 6)
        n_lines = 1 if single else int(np.ceil(h / (leading * size))) + 1
    else:
        width = min(rng.uniform(12, 45) * size, 1600) if not single else np.inf
        n_lines = 1 if single else int(rng.integers(2, 9))
    n_words = int(rng.integers(2, 13)) if np.isinf(width) else int(n_lines * width / size / 2.5) + 4
    texts = _wrap(font, size, corpus.paragraph(rng, n_words), width)[:n_lines] if not np.isinf(width) else [
        " ".join(corpus.paragraph(rng, n_words))]
    justify = not np.isinf(width) and rng.random() < 0.4
    aligns = ["justify" if justify and k < len(texts) - 1 else "left" for k in range(len(texts))]
    lines, block_w = _block(font, size, texts, leading, aligns=aligns, width=None if np.isinf(width) else width)
    if canvas:
        _fit_canvas(rng, lines, size, block_w, leading, canvas, single)
        return _Design(font, size, lines, canvas[1], canvas[0])
    descent = load_font(font, size).getmetrics()[1]
    margin = rng.uniform(0.3, 1.5, 4) * size
    _place(lines, margin[0], margin[1])
    height = lines[-1].baseline + descent + margin[3]
    return _Design(font, size, lines, int(block_w + margin[0] + margin[2]), int(height))


def _receipts(rng, size: int, canvas) -> _Design:
    # receipt printers use mono faces, and narrow sans ones to fit more on a line
    style = ("mono",) if (r := rng.random()) < 0.6 else ("condensed", "sans") if r < 0.9 else ("sans",)
    font = _pick_font(rng, fonts_with(*style, without=("italic",)))
    leading = rng.uniform(1.0, 1.45)
    if canvas:
        h, w = canvas
        n_lines = 1 if rng.random() < 0.3 else int(np.ceil(h / (leading * size))) + 1
    else:
        n_lines = 1 if rng.random() < 0.4 else int(rng.integers(2, 13))
    parts = corpus.receipt_lines(rng, n_lines)
    column = max(_pen_positions(font, size, f"{a}  {b}")[-1] for a, b in parts) * rng.uniform(1.0, 1.4)
    texts, aligns = [], []
    for left, right in parts:
        texts.append(f"{left} {right}" if right else left)
        aligns.append("split" if right else ("center" if rng.random() < 0.4 else "left"))
    lines, _ = _block(font, size, texts, leading, aligns=aligns, width=column)
    for line, (left, right), align in zip(lines, parts, aligns):
        if align == "split":  # the amount sits right-aligned on the receipt's column
            line.x[len(left) + 1:] += column - line.x[-1]
    single = n_lines == 1
    if canvas:
        _fit_canvas(rng, lines, size, column, leading, canvas, single)
        return _Design(font, size, lines, canvas[1], canvas[0])
    if single:  # line crops cut from a scanned receipt are tight around the ink
        x0, y0, x1, y1 = _ink_extent(font, size, lines[0])
        margin = rng.uniform(0.05, 0.4, 4) * size
        _place(lines, margin[0] - x0, margin[1] - y0)
        return _Design(font, size, lines, int(x1 - x0 + margin[0] + margin[2]), int(y1 - y0 + margin[1] + margin[3]))
    descent = load_font(font, size).getmetrics()[1]
    margin = rng.uniform(0.3, 1.2, 4) * size
    _place(lines, margin[0], margin[1])
    return _Design(font, size, lines, int(column + margin[0] + margin[2]), int(lines[-1].baseline + descent + margin[3]))


def _scene(rng, size: int, canvas) -> _Design:
    font = _pick_font(rng, fonts_with("bold") if rng.random() < 0.5 else FONTS)
    word = corpus.scene_word(rng)
    if rng.random() < 0.15:
        word = f"{word} {corpus.scene_word(rng)}"
    tracking = size * rng.uniform(-0.03, 0.12) if rng.random() < 0.3 else 0.0
    lines, block_w = _block(font, size, [word], 1.0, tracking=tracking)
    x0, y0, x1, y1 = _ink_extent(font, size, lines[0])
    y0, y1 = y0 - lines[0].baseline, y1 - lines[0].baseline
    if canvas:
        h, w = canvas
        dx = (w - block_w) / 2 + rng.uniform(-0.2, 0.2) * max(0.0, w - block_w)
        dy = h / 2 - lines[0].baseline - (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * size
        _place(lines, dx, dy)
        return _Design(font, size, lines, w, h)
    # word crops are tight: a little room around the ink
    mx, my = rng.uniform(0.05, 0.4, 2) * size, rng.uniform(0.05, 0.3, 2) * size
    _place(lines, mx[0] - x0, my[0] - lines[0].baseline - y0)
    return _Design(font, size, lines, int(x1 - x0 + mx.sum()), int(y1 - y0 + my.sum()))


# ---------------------------------------------------------------- surfaces and capture per kind


def _docs_surface(rng, shape, cover):
    """Paper and ink of a printed page: (background, page, paper colour)."""
    paper = np.array([245, 243, 238], np.float32) + rng.uniform(-15, 8) + rng.uniform(-4, 4, 3)
    if rng.random() < 0.2:  # aged, recycled or tinted paper
        paper = np.clip(_hsv(rng.uniform(20, 60), rng.uniform(0.05, 0.25), rng.uniform(0.8, 0.97)), 0, 255)
    background = _paper(rng, shape, paper, rng.uniform(0, 4), rng.uniform(0, 6))
    r = rng.random()
    if r < 0.7:  # black, toner or ink-jet
        ink = rng.uniform(0, 50, 3)
    elif r < 0.85:  # blue ink
        ink = _hsv(rng.uniform(200, 240), 0.7, rng.uniform(0.3, 0.6))
    else:  # grey: faint copies
        ink = rng.uniform(60, 120) * np.ones(3)
    strength = rng.uniform(0.75, 1.0) if rng.random() < 0.3 else 1.0
    return background, _paint(background, cover * strength, ink), paper


def _receipts_surface(rng, shape, cover, label, size):
    """Thermal or dot-matrix print on receipt paper: (background, page, paper colour); dot-matrix rewrites `label`."""
    paper = np.array([240, 240, 236], np.float32) + rng.uniform(-18, 10) + rng.uniform(-4, 4, 3)
    background = _paper(rng, shape, paper, rng.uniform(0, 3), rng.uniform(1, 8))
    if rng.random() < 0.35:  # dot-matrix: each glyph becomes the dots of a 9-pin head
        pitch = max(2, round(size * rng.uniform(0.07, 0.1)))
        # fatten strokes to a pitch wide first, so the grid never falls between the dots of a stroke
        fat = cv2.dilate(cover, np.ones((pitch, pitch), np.uint8))
        grid = np.zeros_like(cover, bool)
        grid[pitch // 2:: pitch, pitch // 2:: pitch] = True
        hit = grid & (fat > 0.5)
        radius = max(1, round(pitch * rng.uniform(0.4, 0.6)))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        dots = cv2.dilate(hit.astype(np.uint8), disc)
        owner = cv2.dilate(label.astype(np.float32), np.ones((pitch, pitch), np.uint8))  # nearest glyph of each dot
        label[:] = np.where(dots > 0, cv2.dilate(np.where(hit, owner, 0).astype(np.float32), disc), 0)
        cover = cv2.GaussianBlur(dots.astype(np.float32), (0, 0), 0.5)
        ink = _hsv(rng.uniform(220, 290), rng.uniform(0, 0.5), rng.uniform(0.1, 0.4))
        strength = rng.uniform(0.5, 0.95)
        fade = 1.0
    else:  # thermal: grey-black ink, faint, fading in streaks along the paper's travel
        ink = rng.uniform(10, 60) * np.ones(3)
        strength = rng.uniform(0.4, 0.95)
        streaks = 1 - np.abs(_smooth_field(rng, (1, shape[1]), int(rng.integers(4, 30)), rng.uniform(0, 0.15)))
        fade = np.clip(streaks + _smooth_field(rng, shape, 4, rng.uniform(0, 0.15)), 0.4, 1)
    return background, _paint(background, cover * strength * fade, ink), paper


def _scene_surface(rng, shape, cover, size):
    """A sign or label: a painted, textured or gradient ground, contrasting fill, maybe a shadow and an outline."""
    h, w = shape
    painted = rng.random() < 0.35  # a shop or street sign: a strong flat colour, plain lettering
    if painted:
        base = _hsv(rng.uniform(0, 360), rng.uniform(0.5, 1), rng.uniform(0.3, 1))
    else:
        base = _hsv(rng.uniform(0, 360), rng.uniform(0, 1) ** 2, rng.uniform(0.1, 1))
    r = 0.0 if painted else rng.random()  # a painted ground is flat
    if r < 0.3:
        background = np.broadcast_to(base, (h, w, 3)).astype(np.float32) + _smooth_field(rng, shape, 3, 6)[..., None]
    elif r < 0.6:  # gradient between two colours
        other = _hsv(rng.uniform(0, 360), rng.uniform(0, 1), rng.uniform(0.1, 1))
        angle = rng.uniform(0, np.pi)
        t = np.cos(angle) * np.linspace(0, 1, w)[None, :] + np.sin(angle) * np.linspace(0, 1, h)[:, None]
        t = ((t - t.min()) / max(1e-6, np.ptp(t)))[..., None].astype(np.float32)
        background = base * (1 - t) + other * t
    else:  # texture: coloured blotches of a wall, wood, a poster or a photo behind the sign
        blotches = [_smooth_field(rng, shape, int(rng.integers(3, 20)), rng.uniform(5, 45)) for _ in range(3)]
        background = base + np.stack(blotches, -1)
        if rng.random() < 0.5:
            background = background + rng.normal(0, rng.uniform(2, 12), (h, w, 1)).astype(np.float32)
    background = np.clip(background, 0, 255)
    # text contrasts with what lies behind it
    lum = _luma(background)
    while True:
        if painted:  # white, black or yellow letters
            fill = [np.full(3, 245.0), np.full(3, 15.0), _hsv(rng.uniform(45, 60), 1, 1)][rng.integers(3)]
        else:
            fill = _hsv(rng.uniform(0, 360), rng.uniform(0, 1) ** 1.5, rng.uniform(0, 1))
        if abs(_luma(fill) - lum) > 70:
            break
    page = background.copy()
    if rng.random() < 0.3:  # drop shadow
        dx, dy = (rng.uniform(0.03, 0.1, 2) * size * rng.choice([-1, 1], 2)).astype(np.float32)
        shadow = cv2.warpAffine(cover, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h))
        shadow = cv2.GaussianBlur(shadow, (0, 0), max(0.5, size * rng.uniform(0, 0.06)))
        page = _paint(page, shadow * rng.uniform(0.4, 0.9), np.zeros(3))
    if rng.random() < 0.3:  # outline in a contrasting colour
        r_out = max(1, round(size * rng.uniform(0.03, 0.09)))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_out + 1, 2 * r_out + 1))
        outline = 255 - fill if rng.random() < 0.7 else _hsv(rng.uniform(0, 360), 1, 1)
        page = _paint(page, cv2.dilate(cover, disc), outline)
    page = _paint(page, cover, fill)
    return background, page, _median_colour(background)


def _capture(rng, kind: str, size: int, paper, ink_luma: float, extent: float) -> tuple[np.ndarray, Degradation]:
    """Geometric warp (3x3, about the content centre, `extent` its half-size) and the photometric degradation."""
    photo = kind == "scene" or rng.random() < 0.4
    if kind == "scene":
        rotation, jitter = rng.normal(0, 4), 0.08
    elif photo:
        rotation, jitter = rng.normal(0, 1.5), 0.04
    else:
        rotation, jitter = rng.normal(0, 0.7), 0.0
    light = None
    if photo or rng.random() < 0.3:
        field_ = 1 + _smooth_field(rng, (4, 4), 3, rng.uniform(0.02, 0.15 if photo else 0.05))
        if photo and rng.random() < 0.3:  # a shadow edge across the page
            lit = np.linspace(-1, 1, 4)[None, :] * rng.choice([-1, 1]) > rng.uniform(-0.5, 0.5)
            field_ = field_ * np.where(lit, 1, rng.uniform(0.55, 0.85))
        light = (field_[..., None] * (1 + rng.uniform(-0.03, 0.03, 3) * photo)).astype(np.float32)
    binarised = not photo and kind != "scene" and rng.random() < 0.15
    blur = size * rng.uniform(0, 0.05 if photo else 0.03) if rng.random() < 0.8 else 0.0
    degradation = Degradation(
        seed=int(rng.integers(2**31)),
        light=light,
        blur=blur,
        noise=rng.uniform(0, 10 if photo else 5),
        colour_noise=photo,
        # a threshold nearer the paper than the ink keeps faint print
        threshold=_luma(paper) - rng.uniform(0.25, 0.5) * (_luma(paper) - ink_luma) if binarised else None,
        speckle=rng.uniform(0, 0.002) if binarised else 0.0,
        jpeg=int(rng.integers(30, 96)) if rng.random() < (0.7 if photo else 0.3) else None,
    )
    angle = np.deg2rad(rotation)
    warp = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    if jitter:  # perspective: the camera is not square to the surface
        tilt = rng.normal(0, jitter, 2) / extent  # relative depth change across the content
        warp = np.array([[1, 0, 0], [0, 1, 0], [tilt[0], tilt[1], 1]]) @ warp
    return warp, degradation


def _word_box(rng, label: np.ndarray, em: float) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the ink's bounding box with a margin of -0.05 to 0.3 em on each side, within the image."""
    rows, cols = np.flatnonzero(label.any(1)), np.flatnonzero(label.any(0))
    top, bottom, left, right = rng.uniform(-0.05, 0.3, 4) * em
    h, w = label.shape
    return (max(0, round(rows[0] - top)), min(h, round(rows[-1] + 1 + bottom)),
            max(0, round(cols[0] - left)), min(w, round(cols[-1] + 1 + right)))


def render(kind: str, rng: np.random.Generator, size: int | None = None, canvas: tuple[int, int] | None = None) -> TextImage:
    """A clean text image of `kind` ("docs", "receipts" or "scene") drawn with `rng`.

    size: em size in pixels before perspective; drawn at random from the kind's range if None.
    canvas: (H, W) of the output; the text then fills it (cut at its edges, chars out of view
    get zero boxes), which is how training crops are made without rendering a whole page.
    Without it the image is the text plus realistic margins.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if size is None:
        low, high = {"docs": (12, 60), "receipts": (14, 40), "scene": (16, 100)}[kind]
        size = int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))
    design = {"docs": _docs, "receipts": _receipts, "scene": _scene}[kind](rng, size, canvas)

    # draw on a page with a pad around the content so that a warp never pulls in the void
    pad = int(0.12 * max(design.width, design.height)) + 2
    shape = (design.height + 2 * pad, design.width + 2 * pad)
    cover, label = draw_text(design.font, design.size, design.lines, shape, offset=(pad, pad))
    n = int(sum(not c.isspace() for line in design.lines for c in line.text))
    if kind == "docs":
        background, page, paper = _docs_surface(rng, shape, cover)
    elif kind == "receipts":
        background, page, paper = _receipts_surface(rng, shape, cover, label, size)
    else:
        background, page, paper = _scene_surface(rng, shape, cover, size)
    ink_luma = _luma(page[label > 0]) if (label > 0).any() else 0.0

    warp, degradation = _capture(rng, kind, size, paper, ink_luma, max(design.width, design.height) / 2)
    centre = np.array([[1, 0, pad + design.width / 2], [0, 1, pad + design.height / 2], [0, 0, 1]])
    warp = centre @ warp @ np.linalg.inv(centre)
    corners = pad + np.array([[0, 0], [design.width, 0], [0, design.height], [design.width, design.height]], np.float64)
    mapped = cv2.perspectiveTransform(corners[None], warp)[0]
    if canvas:
        x0, y0 = pad, pad
        out_w, out_h = design.width, design.height
    else:  # the output holds the whole warped content
        x0, y0 = np.floor(mapped.min(0))
        out_w, out_h = (np.ceil(mapped.max(0)) - [x0, y0]).astype(int)
    warp = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ warp
    size_out = (int(out_w), int(out_h))
    warp_image = lambda a: cv2.warpPerspective(
        np.clip(a, 0, 255).astype(np.uint8), warp, size_out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    page, background = warp_image(page), warp_image(background)
    label = cv2.warpPerspective(label.astype(np.float32), warp, size_out, flags=cv2.INTER_NEAREST).astype(np.int32)

    # em size after the warp: the local area scale at the content centre
    c = np.array([[[pad + design.width / 2, pad + design.height / 2]]])
    d = cv2.perspectiveTransform(np.concatenate([c, c + [[[1, 0]]], c + [[[0, 1]]]], 1), warp)[0]
    (ax, ay), (bx, by) = d[1] - d[0], d[2] - d[0]
    scale = np.sqrt(abs(ax * by - ay * bx))
    if kind == "scene" and not canvas and (label > 0).any():
        # a word box drawn around the ink in the photo, as scene-text sets cut them: it often touches or
        # clips the letters, and a detector that pads the crop then sees their ink run on at the edge
        y0, y1, x0, x1 = _word_box(rng, label, size * scale)
        page, background, label = page[y0:y1, x0:x1], background[y0:y1, x0:x1], label[y0:y1, x0:x1]
        paper = _median_colour(background)

    return TextImage(
        image=degradation.apply(page),
        text="\n".join(line.text for line in design.lines),
        char_boxes=_char_boxes(label, n),
        char_ink=label,
        text_height=float(size * scale),
        paper=tuple(int(v) for v in np.clip(paper, 0, 255)),
        kind=kind,
        page=page,
        background=background,
        degradation=degradation,
    )
