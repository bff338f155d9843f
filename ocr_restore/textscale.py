"""Text scale: every model works at one normalised text height.

TEXT_HEIGHT is the em size (font size) in pixels that the detector and the
inpainter see; images are resized by TEXT_HEIGHT / estimate_text_height(image).

The estimate flattens uneven light, binarises (Otsu; the ground is the class
that holds the image border, so light text on a dark ground works too, unless
that class is a page's dark surround; where ink is too rare for that, as on a
page with a single line, Otsu over the strong edges only, where ink and ground
are about equally common), and takes the heights of the connected components.
Weighted by size, so specks of noise do not count, the components near the
typical one give a glyph height a fixed share of the em (0.76, between x-height
letters and tall ones). Where specks still outvote a row of letters as tall as
the crop (a textured sign), no size is measured. A second pass at about
20 px per em, after a small closing, joins the dots of dot-matrix print and the
fragments of faint glyphs. The constants are calibrated on the renderer of
ocr_restore.data: within 25% of the truth for about 93% of its documents, 85% of
its receipts and 79% of its scene words (tests/test_textscale.py).

Occluders distort the estimate: a blot merged with a word is one tall component.
Where the mask is known (the inpainter's hole, or the detector's first pass),
components mostly under it are left out: on renderer images a quarter covered
that takes the share within 20% of the truth from 62% to 73%.
"""

import cv2
import numpy as np

__all__ = ["TEXT_HEIGHT", "MIN_INPUT", "CROP_EM_PER_HEIGHT", "WORD_CROP", "estimate_text_height", "guess_em",
           "text_height", "centre_padding", "light_on_dark"]

TEXT_HEIGHT = 24  # em size in pixels at which models train and run
# (H, W) px at TEXT_HEIGHT: the detector's training crop. A smaller input is padded to it by edge replication
# (centre_padding), in training (data.fit_crop) as at inference (detect), since the model never saw the image's
# edge closer to the text than that
MIN_INPUT = (96, 160)
DETECTOR_EM_PER_HEIGHT = 0.7  # the same, as the detector guesses it (guess_em)
CROP_EM_PER_HEIGHT = 0.8  # a word or line crop with no measurable text: its em is this fraction of its height
SMALL_CROP = 4 * TEXT_HEIGHT  # images up to this height without a text estimate are taken for word or line crops

_WORK_SIDE = 1200  # the first pass runs on the image scaled so its longer side is at most this
_SECOND_PASS_EM = 20.0  # em size in pixels of the second pass
_QUANTILE = 55  # percentile of component heights (weighted by sqrt area) read as the glyph height
_TALL_PER_EM = 0.76  # that height per em, calibrated on the renderer
_EDGE = 64  # 3x3 grey-level range (of 255 after stretching) that marks a strong edge
_MIN_EDGE_PIXELS = 50  # fewer strong-edge pixels than this: keep the threshold over the whole image
_MAX_INK_SHARE = 0.3  # both Otsu classes above this share: it split the ground, not ink from ground
WORD_CROP = 8 * TEXT_HEIGHT  # images up to this height may be one word in letters as tall as the image
_MAX_TEXT_REGION = 0.5  # share of a page that no one connected region of its text covers
_SPECKS_PER_LETTER = 5  # letters this many times taller than the shapes measured: those are specks, not text
_IGNORED_SHARE = 0.5  # components with more than this share of their pixels in `ignore` are not measured


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, q / 100 * cumulative[-1])])


def _ink(gray: np.ndarray) -> np.ndarray | None:
    """uint8 0/1 of `gray`'s shape, 1 where its text is, dark or light; None where it has too little contrast."""
    # flatten uneven light: subtract a blur a third of the image wide, far wider than any stroke,
    # computed on a thumbnail since a kernel that wide is slow at full size
    h, w = gray.shape
    shrink = min(1.0, 48 / min(h, w))
    thumb = cv2.resize(gray, (max(1, round(w * shrink)), max(1, round(h * shrink))), interpolation=cv2.INTER_AREA)
    light = cv2.GaussianBlur(thumb.astype(np.float32), (0, 0), max(4.0 * shrink, min(thumb.shape) / 3))
    flat = gray.astype(np.float32) - cv2.resize(light, (w, h), interpolation=cv2.INTER_LINEAR)
    # the range from a median-filtered copy: robust to speckle, yet a page with one line of text still has contrast
    low, high, _, _ = cv2.minMaxLoc(cv2.medianBlur(flat, 3))
    if high - low < 16:
        return None
    flat = np.clip((flat - low) * (255 / (high - low)), 0, 255).astype(np.uint8)
    _, binary = cv2.threshold(flat, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if min(binary.mean(), 1 - binary.mean()) > _MAX_INK_SHARE:
        # neither class is rare, as ink is: on a page with a line or two, Otsu split the ground's noise
        edges = cv2.morphologyEx(flat, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) >= _EDGE
        if np.count_nonzero(edges) >= _MIN_EDGE_PIXELS:
            threshold, _ = cv2.threshold(flat[edges].reshape(1, -1), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            binary = (flat > threshold).view(np.uint8)
    # the ground is the class that holds the border (a crop's edge is mostly ground), or failing a
    # clear answer the majority: dark text on light and light text on dark both work
    border = np.concatenate([binary[0], binary[-1], binary[:, 0], binary[:, -1]]).mean()
    if border > 0.6 or (border >= 0.4 and binary.mean() > 0.5):
        binary = 1 - binary
    # but a page scanned or photographed on a darker surround has the surround at its border, and the page itself
    # then comes out as "ink": one connected region over half the image, which no text on a page is (in a word
    # crop bold letters can merge into one)
    if h > WORD_CROP and binary.mean() > _MAX_TEXT_REGION:
        count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4)
        if count > 1 and stats[1:, cv2.CC_STAT_AREA].max() > _MAX_TEXT_REGION * binary.size:
            binary = 1 - binary
    return binary


def _tall_height(gray: np.ndarray, close: bool, ignore: np.ndarray | None = None) -> float | None:
    """The tall-glyph height in pixels of `gray`'s text, or None without text. Components
    mostly under `ignore` (bool, gray's size) are left out."""
    binary = _ink(gray)
    if binary is None:
        return None
    if close:
        binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    tall_enough = stats[1:, cv2.CC_STAT_HEIGHT] >= 3
    shapes = measurable = stats[1:][tall_enough]
    if ignore is not None:
        # an occluder, and the glyphs it merged with, say nothing of the text's size; glyphs it only
        # clips still do (dropping every touched glyph would leave only fragments on a covered word)
        under = np.bincount(labels[ignore], minlength=count)[1:][tall_enough]
        measurable = shapes[under <= _IGNORED_SHARE * shapes[:, cv2.CC_STAT_AREA]]
    # the ground cut into pieces by a frame or a stripe is not a glyph
    inside = ((measurable[:, cv2.CC_STAT_HEIGHT] < 0.95 * gray.shape[0])
              & (measurable[:, cv2.CC_STAT_WIDTH] < 0.95 * gray.shape[1]))
    heights, areas = measurable[inside, cv2.CC_STAT_HEIGHT].astype(np.float64), measurable[inside, cv2.CC_STAT_AREA]
    if len(heights) == 0:
        return None
    # weigh by size so that specks of noise or texture do not outvote the glyphs
    weights = np.sqrt(areas)
    typical = _weighted_percentile(heights, weights, 50)
    near = (heights > 0.4 * typical) & (heights < 2.5 * typical)
    # all shapes, those under `ignore` too: a detector takes a sign's big letters for occluders
    if _outgrown(shapes, areas[near].sum(), typical, gray.shape[0]):
        return None
    return _weighted_percentile(heights[near], weights[near], _QUANTILE)


def _outgrown(shapes: np.ndarray, measured_area: int, typical: float, height: int) -> bool:
    """Whether the shapes measured (`typical` px tall, `measured_area` px of ink) are a texture's specks beside a
    row of letters as tall as the crop (`height`), which the size weights cannot tell: a bronze plaque, a sign's
    grain. Then no size is measured and the crop is taken for a word. `shapes`: connectedComponentsWithStats rows,
    the letters touching the crop's edges among them."""
    big = shapes[shapes[:, cv2.CC_STAT_HEIGHT] >= _SPECKS_PER_LETTER * typical]
    if big[:, cv2.CC_STAT_AREA].sum() <= measured_area:
        return False
    rises = big[:, cv2.CC_STAT_HEIGHT]
    rise = np.median(rises)
    letters = big[(rises > 0.75 * rise) & (rises < 1.33 * rise)]  # of one height, unlike a frame and its ornaments
    if len(letters) < 3 or rise < 0.5 * height:
        return False
    tops = letters[:, cv2.CC_STAT_TOP]
    return (tops + letters[:, cv2.CC_STAT_HEIGHT]).min() - tops.max() >= 0.5 * rise  # in one row


def _resized(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """`mask` at `shape`, grown by a pixel so anti-aliased edges count too; None stays None."""
    if mask is None:
        return None
    small = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0
    return cv2.dilate(small.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _at_work_size(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """`gray` shrunk so its longer side is at most _WORK_SIDE, and the factor it was shrunk by."""
    scale = min(1.0, _WORK_SIDE / max(gray.shape))
    return (cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray), scale


def light_on_dark(image: np.ndarray) -> bool:
    """Whether an RGB image's text is lighter than its ground, as on many signs (print is darker than paper):
    the text as `estimate_text_height` finds it, on the image at its working size."""
    small, _ = _at_work_size(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    ink = _ink(small)
    if ink is None or ink.all() or not ink.any():
        return False
    ink = ink.view(bool)
    return float(small[ink].mean()) > float(small[~ink].mean())


def estimate_text_height(image: np.ndarray, ignore: np.ndarray | None = None) -> float | None:
    """The em size in pixels of the dominant text in `image` (uint8 HxWx3 RGB), or None if no text is found.

    ignore: bool HxW, pixels known not to be text (an occluder's mask); shapes mostly under it are not measured.
    """
    if image.size == 0:
        return None
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    if int(gray.max()) - int(gray.min()) < 16:
        return None
    small, scale = _at_work_size(gray)
    tall = _tall_height(small, close=False, ignore=_resized(ignore, small.shape))
    if tall is None:
        return None
    em = tall / _TALL_PER_EM / scale
    # second pass at a fixed em size, where a 3x3 closing bridges dot and fragment gaps
    second = min(1.0, _SECOND_PASS_EM / em)
    h, w = gray.shape
    if min(h, w) * second >= 8:
        resized = cv2.resize(gray, (max(1, round(w * second)), max(1, round(h * second))), interpolation=cv2.INTER_AREA)
        tall = _tall_height(resized, close=True, ignore=_resized(ignore, resized.shape))
        if tall is not None:
            em = tall / _TALL_PER_EM / second
    return em


def guess_em(height: int, width: int, for_detector: bool = False) -> float:
    """The em of an image in which no text was measured: a small crop is taken for a word or a line, anything
    else is left at its own scale. The detector has its own guess, 0.7 of the height of any image at least as
    wide as high: its shipped weights were tuned with it, and with the inpainter's guess the default
    pipeline read 100 tuning IIIT5K words worse (CER 0.442 -> 0.463, docs/experiments.md)."""
    if for_detector:
        return DETECTOR_EM_PER_HEIGHT * height if width >= height else TEXT_HEIGHT
    return CROP_EM_PER_HEIGHT * height if height <= SMALL_CROP else TEXT_HEIGHT


def text_height(image: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """The em in pixels: estimated (away from `ignore`), else guessed from the image's height."""
    em = estimate_text_height(image, ignore=ignore)
    return em if em is not None else guess_em(*image.shape[:2])


def centre_padding(size: int, minimum: int) -> tuple[int, int]:
    """(before, after): the padding that brings `size` up to `minimum`, split around the centre."""
    pad = max(0, minimum - size)
    return pad // 2, pad - pad // 2
