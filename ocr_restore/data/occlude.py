"""Occluders on text: lines, pen strokes, scribbles, geometric shapes, blobs and torn holes.

Shapes are painted on the sample's page (before the capture degradation, so they
sit on the paper like real ones) and the page is captured again with the same
seeded degradation. The clean and the occluded image then differ only around the
shapes; the mask is exactly the set of pixels that differ.

Sizes are in units of the text height, and shapes are placed mostly over the text:
coverage is the fraction of the text region (the characters' bounding box padded by
half an em) painted by shapes, and the generator adds and shrinks shapes until it is
within about 10% of the request.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from ..choices import SHAPE_KINDS
from .render import TextImage, _hsv, _smooth_field

__all__ = ["SHAPE_KINDS", "STYLES", "COLOURS", "Shape", "Occlusion", "occlude", "hidden_share", "recoverable",
           "text_region"]

STYLES = ("filled", "outline", "textured", "highlighter")
COLOURS = ("black", "white", "paper", "grey", "saturated")
_SHAPE_P = np.array([0.14, 0.14, 0.12, 0.07, 0.08, 0.15, 0.1, 0.1, 0.1])  # per SHAPE_KINDS: bars and strokes are commonest
_COLOUR_P = np.array([0.35, 0.12, 0.13, 0.15, 0.25])
_CLOSED = {"circle", "ellipse", "rect", "polygon", "blob"}
_TOLERANCE = 0.1  # a shape may overshoot the requested coverage by this share of it
_CLOSE_ENOUGH = 0.04  # stop adding shapes this close (relative) below the request
_SUBPIXEL = 4  # cv2 drawing shift: coordinates in 1/16 px
_INVISIBLE = 4  # grey levels: a change this small beside a shape is JPEG or blur spill, not the shape
_ERASE_RADIUS = 5  # px: cv2.inpaint's neighbourhood when the paper is drawn over an erased character
WHOLLY = 0.95  # a character with at least this share of its ink hidden is wholly hidden


@dataclass
class Shape:
    """One occluder: what it is, how it is painted, and in which colour class."""

    kind: str  # one of SHAPE_KINDS
    style: str  # one of STYLES
    colour: str  # one of COLOURS


@dataclass
class Occlusion:
    """An occluded copy of a TextImage and the truth about what was hidden."""

    image: np.ndarray  # uint8 HxWx3 occluded image
    mask: np.ndarray  # bool HxW, exactly the pixels where image differs from the clean image
    shape_ids: np.ndarray  # int16 HxW: k where the k-th shape (1-based) changed the pixel, topmost wins; 0 elsewhere
    shapes: list[Shape]  # the shapes in painting order
    # bool HxW: what can no longer be seen: the mask, but for pixels only a highlighter changed, and
    # every pixel under an opaque shape (a black bar on black ink changes no pixel yet hides it)
    hidden: np.ndarray
    char_hidden: np.ndarray  # float32 N: hidden_share of each char's ink; 0 for chars out of view
    coverage: float  # fraction of the text region painted by shapes
    paper_area: np.ndarray  # bool HxW: pixels painted by a paper-coloured shape (erasures), changed or not

    @property
    def wholly_hidden(self) -> np.ndarray:
        """Chars (bool N) with at least WHOLLY of their ink hidden."""
        return self.char_hidden >= WHOLLY


def hidden_share(ink: np.ndarray, hidden: np.ndarray, count: int) -> np.ndarray:
    """float32 (count,): the share of each ink label 1..count (int HxW, 0 = no ink) that `hidden` covers."""
    total = np.bincount(ink.ravel(), minlength=count + 1)[1 : count + 1]
    lost = np.bincount(ink[hidden], minlength=count + 1)[1 : count + 1]
    return (lost / np.maximum(total, 1)).astype(np.float32)


def text_region(sample: TextImage) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the characters' bounding box padded by half an em; the whole image if there are none."""
    h, w = sample.image.shape[:2]
    boxes = sample.char_boxes[sample.char_boxes[:, 2] > sample.char_boxes[:, 0]]
    if len(boxes) == 0:
        return 0, 0, w, h
    pad = int(round(sample.text_height / 2))
    x0, y0 = boxes[:, :2].min(0) - pad
    x1, y1 = boxes[:, 2:].max(0) + pad
    return max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))


# ---------------------------------------------------------------- geometry


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * (1 << _SUBPIXEL)).astype(np.int32).reshape(-1, 1, 2)


def _curve(rng, start: np.ndarray, direction: float, length: float, bend: float, n: int = 24) -> np.ndarray:
    """A smooth pen path: a random walk of the heading, sampled at n points."""
    heading = direction + np.cumsum(rng.normal(0, bend, n)) / np.sqrt(n)
    step = length / n
    return start + np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1) * step, 0)


def _radial(rng, centre, radius: float, n: int, roughness: float, smooth: bool) -> np.ndarray:
    """A closed outline around `centre`: smooth harmonics (blob) or random radii (concave polygon)."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n)) if not smooth else np.linspace(0, 2 * np.pi, n, endpoint=False)
    if smooth:
        r = np.ones(n)
        for k in range(2, 6):
            r += rng.normal(0, roughness / k) * np.sin(k * angles + rng.uniform(0, 2 * np.pi))
    else:
        r = rng.uniform(1 - roughness, 1 + roughness * 0.5, n)
    r = np.clip(r, 0.2, None) * radius
    return centre + np.stack([r * np.cos(angles), r * np.sin(angles)], 1)


def _draw_shape(rng, kind: str, outline: bool, centre: np.ndarray, area: float, em: float, shape) -> np.ndarray:
    """Footprint (uint8 HxW, 255 = covered, antialiased edges) of one shape of about `area` px^2."""
    canvas = np.zeros(shape, np.uint8)
    aa = cv2.LINE_AA
    angle = rng.uniform(0, np.pi) if rng.random() < 0.5 else rng.normal(0, 0.15)  # many marks run along the lines
    thin = max(1, int(round(em * rng.uniform(0.06, 0.3))))
    if kind == "line":
        t = max(1.0, min(em * np.exp(rng.uniform(np.log(0.05), np.log(1.2))), np.sqrt(area)))
        half = area / t / 2 * np.array([np.cos(angle), np.sin(angle)])
        p0, p1 = (tuple(p) for p in _fixed([centre - half, centre + half])[:, 0].tolist())
        cv2.line(canvas, p0, p1, 255, int(round(t)), aa, _SUBPIXEL)
    elif kind == "stroke":
        t = max(1, int(round(em * rng.uniform(0.06, 0.35))))
        length = area / t
        start = centre - length / 2 * np.array([np.cos(angle), np.sin(angle)])
        path = _curve(rng, start, angle, length, rng.uniform(0.3, 2.5))
        cv2.polylines(canvas, [_fixed(path)], False, 255, t, aa, _SUBPIXEL)
    elif kind == "scribble":
        t = max(1, int(round(em * rng.uniform(0.04, 0.2))))
        height = em * rng.uniform(0.5, 2.0)
        n = max(3, int(area / t / height))  # back-and-forth passes
        along = np.linspace(-0.5, 0.5, n) * n * height * rng.uniform(0.15, 0.5)
        across = np.where(np.arange(n) % 2, 0.5, -0.5) * height + rng.normal(0, 0.15 * height, n)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        path = centre + np.stack([along, across], 1) @ rot.T
        cv2.polylines(canvas, [_fixed(path)], False, 255, t, aa, _SUBPIXEL)
    elif kind in ("circle", "ellipse"):
        ratio = 1.0 if kind == "circle" else rng.uniform(0.25, 0.9)
        a = np.sqrt(area / np.pi / ratio)
        axes = (int(round(a * 16)), int(round(a * ratio * 16)))
        at = tuple(_fixed(centre)[0, 0].tolist())
        cv2.ellipse(canvas, at, axes, np.rad2deg(angle), 0, 360, 255, thin if outline else -1, aa, _SUBPIXEL)
    elif kind == "rect":
        # redaction bars are about a line high and run along it
        height = em * rng.uniform(0.6, 1.8) if rng.random() < 0.6 else np.sqrt(area / rng.uniform(1, 4))
        box = cv2.boxPoints(((float(centre[0]), float(centre[1])), (area / height, height), np.rad2deg(angle)))
        _fill(canvas, box, outline, thin)
    elif kind == "polygon":
        radius = np.sqrt(area / np.pi)
        if rng.random() < 0.5:
            points = cv2.convexHull((centre + rng.normal(0, radius, (int(rng.integers(3, 9)), 2))).astype(np.float32))[:, 0]
        else:
            points = _radial(rng, centre, radius * 1.2, int(rng.integers(5, 12)), rng.uniform(0.3, 0.8), smooth=False)
        _fill(canvas, points, outline, thin)
    elif kind == "blob":
        outline_points = _radial(rng, centre, np.sqrt(area / np.pi), 48, rng.uniform(0.1, 0.5), smooth=True)
        _fill(canvas, outline_points, outline, thin)
    else:  # freeform: a torn or eaten hole with ragged edges, possibly in pieces
        radius = np.sqrt(area / np.pi) * 1.3
        x0, y0 = (centre - radius).astype(int)
        size = int(2 * radius) + 1
        yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
        field = _smooth_field(rng, (size, size), int(rng.integers(2, 6)), 0.5) + rng.normal(0, 0.06, (size, size))
        hole = ((1 - np.sqrt(xx**2 + yy**2) + field) > 0.55).astype(np.uint8) * 255
        _paste(canvas, hole, x0, y0)
    return canvas


def _fill(canvas, points, outline: bool, thickness: int) -> None:
    if outline:
        cv2.polylines(canvas, [_fixed(points)], True, 255, thickness, cv2.LINE_AA, _SUBPIXEL)
    else:
        cv2.fillPoly(canvas, [_fixed(points)], 255, cv2.LINE_AA, _SUBPIXEL)


def _paste(canvas, patch, x0: int, y0: int) -> None:
    h, w = canvas.shape
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1, dy1 = min(w, x0 + patch.shape[1]), min(h, y0 + patch.shape[0])
    if dx1 > dx0 and dy1 > dy0:
        canvas[dy0:dy1, dx0:dx1] = patch[sy0: sy0 + dy1 - dy0, sx0: sx0 + dx1 - dx0]


# ---------------------------------------------------------------- paint


def _colour(rng, name: str, sample: TextImage) -> np.ndarray:
    if name == "black":
        return rng.uniform(0, 45) + rng.uniform(-5, 5, 3)
    if name == "white":
        return rng.uniform(232, 255) + rng.uniform(-3, 3, 3)
    if name == "paper":
        return sample.background.astype(np.float32)
    if name == "grey":
        return rng.uniform(60, 200) * np.ones(3)
    return _hsv(rng.uniform(0, 360), rng.uniform(0.6, 1), rng.uniform(0.45, 1))


def _texture(rng, colour: np.ndarray, shape, em: float) -> np.ndarray:
    """A fill pattern in `colour`: hatching, halftone dots, grain or a gradient (float32 HxWx3)."""
    h, w = shape
    base = np.broadcast_to(colour, (h, w, 3)).astype(np.float32)
    other = np.clip(colour + rng.choice([-1, 1]) * rng.uniform(60, 160), 0, 255)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = rng.random()
    if r < 0.35:  # hatching
        angle, period = rng.uniform(0, np.pi), max(3.0, em * rng.uniform(0.15, 0.6))
        t = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > rng.uniform(-0.5, 0.5))
    elif r < 0.6:  # halftone dots
        period = max(3.0, em * rng.uniform(0.1, 0.4))
        t = (np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period)) > rng.uniform(0.2, 0.6)
    elif r < 0.85:  # grain, as of a stamp pad or a smudge
        t = (_smooth_field(rng, shape, int(max(h, w) / max(em * 0.3, 2)) + 2, 1.0) + rng.normal(0, 0.3, shape)) > 0
    else:  # gradient
        t = (xx * np.cos(rng.uniform(0, 2 * np.pi)) + yy * np.sin(rng.uniform(0, 2 * np.pi)))
        t = ((t - t.min()) / max(1e-6, np.ptp(t)))[..., None]
        return base * (1 - t) + other * t
    return np.where(t[..., None], other, base).astype(np.float32)


def _anchors(rng, sample: TextImage, region) -> np.ndarray:
    """Candidate shape centres: the centres of characters in view, or dark pixels of a real image."""
    boxes = sample.char_boxes[sample.char_boxes[:, 2] > sample.char_boxes[:, 0]]
    if len(boxes):
        return (boxes[:, :2] + boxes[:, 2:]) / 2
    x0, y0, x1, y1 = region
    gray = sample.image[y0:y1, x0:x1].mean(-1)
    ink = np.argwhere(np.abs(gray - np.median(gray)) > 40)[:, ::-1] + [x0, y0]
    return ink[rng.choice(len(ink), min(len(ink), 400), replace=False)] if len(ink) else np.zeros((0, 2))


def occlude(sample: TextImage, rng: np.random.Generator, coverage: float, kinds: tuple[str, ...] = SHAPE_KINDS) -> Occlusion:
    """Paint shapes of `kinds` (SHAPE_KINDS, each as common as among all) over `sample` until they cover `coverage`
    (0.01 to 0.4) of its text region."""
    assert 0 < coverage <= 0.6, f"coverage {coverage} out of range (0, 0.6]"
    assert kinds and set(kinds) <= set(SHAPE_KINDS), f"kinds must be among {SHAPE_KINDS}, got {kinds}"
    kind_p = np.array([_SHAPE_P[SHAPE_KINDS.index(kind)] for kind in kinds])
    h, w = sample.image.shape[:2]
    em = max(sample.text_height, 4.0)
    region = text_region(sample)
    x0, y0, x1, y1 = region
    target = coverage * (x1 - x0) * (y1 - y0)
    anchors = _anchors(rng, sample, region)

    page = sample.page.astype(np.float32)
    covered = np.zeros((h, w), bool)
    cover_ids = np.zeros((h, w), np.int16)
    opaque = np.zeros((h, w), bool)
    shapes: list[Shape] = []
    painted = 0
    for _ in range(80):
        remaining = target - painted
        if remaining <= target * _CLOSE_ENOUGH:
            break
        kind = kinds[rng.choice(len(kinds), p=kind_p / kind_p.sum())]
        colour = COLOURS[rng.choice(len(COLOURS), p=_COLOUR_P)]
        style = "filled"
        if colour != "paper":
            style = rng.choice(["filled", "outline", "textured", "highlighter"], p=[0.55, 0.15, 0.15, 0.15])
            if style == "outline" and kind not in _CLOSED:
                style = "filled"
            if style == "highlighter":
                colour = "saturated"
        area = np.clip(remaining * rng.uniform(0.3, 1.0), (0.3 * em) ** 2, (rng.uniform(2, 8) * em) ** 2)
        if len(anchors) and rng.random() < 0.85:
            centre = anchors[rng.integers(len(anchors))] + rng.normal(0, 0.3 * em, 2)
        else:
            centre = rng.uniform([x0, y0], [x1, y1])
        for _try in range(6):  # shrink a shape that would overshoot the coverage
            alpha = _draw_shape(rng, kind, style == "outline", centre, area, em, (h, w))
            if sample.kind == "real":  # no capture follows to soften the edges as a camera would
                alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, 0.03 * em))
            painted_here = alpha[y0:y1, x0:x1] > 0
            gain = int(np.count_nonzero(painted_here & ~covered[y0:y1, x0:x1]))
            if painted + gain <= target * (1 + _TOLERANCE) + 2:
                break
            area *= 0.55
        else:
            continue
        if gain == 0 and not painted_here.any():
            continue
        painted += gain
        covered[y0:y1, x0:x1] |= painted_here
        shapes.append(Shape(str(kind), str(style), str(colour)))
        cover_ids[alpha > 0] = len(shapes)
        if style != "highlighter":
            opaque |= alpha > 127
        page = _composite(rng, page, alpha, style, colour, sample, em)

    clean = sample.image
    captured = sample.degradation.apply(np.clip(page + 0.5, 0, 255).astype(np.uint8))
    # the capture spreads a change (blur, JPEG blocks); keep the visible part of the spread only
    reach = int(np.ceil(3 * sample.degradation.blur)) + 2
    near = cv2.dilate((cover_ids > 0).astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    visible = np.abs(captured.astype(np.int16) - clean).max(-1) > _INVISIBLE
    image = np.where((near & (visible | (cover_ids > 0)))[..., None], captured, clean)
    mask = (image != clean).any(-1)

    # pixels changed only through the spread take the id of the nearest shape
    owner = cover_ids.copy()
    for _ in range(reach):
        unowned = owner == 0
        owner[unowned] = cv2.dilate(owner, np.ones((3, 3), np.uint8))[unowned]
    shape_ids = np.where(mask, owner, 0).astype(np.int16)

    paper_ids = [k + 1 for k, s in enumerate(shapes) if s.colour == "paper"]
    highlight_ids = [k + 1 for k, s in enumerate(shapes) if s.style == "highlighter"]
    hidden = mask & ~np.isin(shape_ids, highlight_ids) | opaque
    return Occlusion(
        image=image,
        mask=mask,
        shape_ids=shape_ids,
        shapes=shapes,
        hidden=hidden,
        char_hidden=hidden_share(sample.char_ink, hidden, len(sample.char_boxes)),
        coverage=painted / max(1.0, (x1 - x0) * (y1 - y0)),
        paper_area=np.isin(cover_ids, paper_ids) if paper_ids else np.zeros((h, w), bool),
    )


def recoverable(clean: np.ndarray, ink: np.ndarray, occlusion: Occlusion, spread: int) -> np.ndarray:
    """The clean image without the characters `occlusion` wholly hides (uint8 HxWx3).

    It is the most a restoration can give back without writing letters of which
    nothing is left in view, and so the floor of the CER any inpainter can reach
    without guessing text. ink: int HxW, the characters' ink labelled 1..N (a
    TextImage's char_ink, or render.ink_components of a real image). The wholly
    hidden characters' ink, widened by `spread` px (the capture's blur), is filled
    with the paper around it (Telea); the ink of every character still in view, and
    every pixel away from the erased ones, is the clean image's.
    """
    wholly = hidden_share(ink, occlusion.hidden, int(ink.max())) >= WHOLLY
    hidden = np.isin(ink, np.flatnonzero(wholly) + 1)
    if not hidden.any():
        return clean.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * spread + 1,) * 2)
    in_view = (ink > 0) & ~hidden
    erase = cv2.dilate(hidden.view(np.uint8), disc).view(bool) & ~in_view
    return cv2.inpaint(clean, erase.view(np.uint8), _ERASE_RADIUS, cv2.INPAINT_TELEA)


def _composite(rng, page: np.ndarray, alpha: np.ndarray, style: str, colour: str, sample: TextImage, em: float):
    """Paint one shape with footprint `alpha` onto `page` (float32) within the footprint's box only."""
    ys, xs = np.nonzero(alpha)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    a = alpha[y0:y1, x0:x1, None].astype(np.float32) / 255
    box = page[y0:y1, x0:x1]
    fill = _colour(rng, colour, sample)
    if fill.ndim == 3:
        fill = fill[y0:y1, x0:x1]
    if style == "highlighter":  # translucent ink multiplies with what lies under it
        light = _hsv(rng.uniform(0, 360), rng.uniform(0.4, 0.9), 1.0) / 255
        box = box * (1 - a * rng.uniform(0.4, 0.8) * (1 - light))
    elif style == "textured":
        box = box * (1 - a) + _texture(rng, fill, (y1 - y0, x1 - x0), em) * a
    else:
        box = box * (1 - a) + fill * a
    page[y0:y1, x0:x1] = box
    return page
