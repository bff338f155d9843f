"""The detection stage: find the shapes that cover text and return a mask.

`build_detector("model")` runs the SegUNet from the shipped `detector.safetensors`;
`build_detector("classical")` is a colour and stroke-width baseline with no
learning, the fallback and the benchmark's point of comparison. Both return a
Detector: `detector(image)` gives a Detection with the thresholded mask, the
paper-coloured part of it (erasures, white-out), the per-pixel probability and the
text's em measured away from what it found (Restoration.em).

The model runs at the normalised text scale in overlapping tiles, so memory stays
bounded on a 300-dpi page. An occluder merged with the text misleads the em
estimate, so the em is measured again without what the first pass found, and the
model runs again when the two differ by more than RESCALE (an em the caller gives
is trusted as it is). Each pass averages the probabilities with an eroded context
view at half the scale, which sees far enough to know the inside of a wide shape
from plain ground. An input smaller than the training crop (MIN_INPUT) is padded
to it by edge replication, as the training crops were. Light text on a dark
ground (`textscale.light_on_dark`) is inverted first: the model learnt print,
darker than its paper, and took a sign's dark ground for one wide shape. The
model runs with its BatchNorms folded into the convolutions, and in bfloat16 where
the device computes it natively. Why each of these, with the figures:
docs/experiments.md.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import ModelError
from .choices import DETECTORS
from .nn.seg_unet import SegUNet, fold_batchnorm, load_seg_unet
from .nn.weights import native_bfloat16, resolve_device, shipped
from .textscale import MIN_INPUT, TEXT_HEIGHT, centre_padding, estimate_text_height, guess_em, light_on_dark

__all__ = [
    "Detection", "Detector", "ModelDetector", "ClassicalDetector", "DETECTORS", "DEFAULT_WEIGHTS", "build_detector",
]

DEFAULT_WEIGHTS = shipped("detector.safetensors")
TILE = 512  # tile side (px at the normalised scale) for bounded memory
OVERLAP = 64  # tiles overlap by this; each keeps only its part >= OVERLAP/2 from an inner edge
TILE_BATCH = {"cpu": 1, "cuda": 8}  # tiles per forward pass: on a CPU batching saves no time, only adds memory
SCALE_RANGE = (1 / 8, 4.0)  # resize factors beyond these come from a wrong em estimate, not real text
MAX_UPSCALED_PIXELS = 16_000_000  # never enlarge an image beyond this (an A4 page at 300 dpi is 8.7 Mpx)
# never run the model on more than this many pixels: the maps at the model's scale take 8 bytes a pixel
# beside the page's own, and a 600 Mpx page (the reader's limit) with 24-px text would need them all
MAX_MODEL_PIXELS = 100_000_000
RESCALE = 1.15  # a second pass when the em measured without the first pass's mask differs by more than this factor
CONTEXT_SCALE = 0.5  # the context view's scale relative to the normalised one
CONTEXT_ERODE = 2  # px (at the context view's scale) by which its probabilities are eroded
CONTEXT_MIN_SIDE = 96  # px at the normalised scale: a smaller side is a word or a line, which the fine view sees whole


@dataclass
class Detection:
    mask: np.ndarray  # bool HxW, True = occluded: probability >= threshold, then dilated by `dilate` px
    paper_mask: np.ndarray  # bool HxW, the part of `mask` under paper-coloured shapes (erasure, white-out)
    probability: np.ndarray  # float32 HxW, probability of an occluder of any colour, before dilation
    em: float | None = None  # the text's em in pixels, measured away from the occluders found; None: no text found


def _text_scale(image: np.ndarray, em: float | None) -> float:
    """The factor that brings the image's em size to TEXT_HEIGHT, within SCALE_RANGE and MAX_UPSCALED_PIXELS.

    With no text found (em None), the em is textscale.guess_em's.
    """
    height, width = image.shape[:2]
    if em is None:
        em = guess_em(height, width, for_detector=True)
    scale = float(np.clip(TEXT_HEIGHT / em, *SCALE_RANGE))
    scale = min(scale, max(1.0, np.sqrt(MAX_UPSCALED_PIXELS / (height * width))))
    return min(scale, np.sqrt(MAX_MODEL_PIXELS / (height * width)))


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width): area averaging when shrinking, bilinear when growing."""
    height, width = size
    if array.shape[:2] == (height, width):
        return array
    shrinking = height * width < array.shape[0] * array.shape[1]
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _at_scale(image: np.ndarray, scale: float) -> np.ndarray:
    """`image` resized by `scale`, at least 1 px each way."""
    height, width = image.shape[:2]
    return _resize(image, (max(1, round(height * scale)), max(1, round(width * scale))))


def _tile_side(length: int, tile: int, overlap: int, multiple: int) -> int:
    """The side, at most `tile`, of the fewest tiles that cover `length`, shared evenly: fixed 512-px tiles on
    a page computed 1.85 times its pixels, even ones 1.36 times."""
    if length <= tile:
        return length
    count = -(-(length - overlap) // (tile - overlap))
    side = -(-(length + (count - 1) * overlap) // count)
    return min(tile, -(-side // multiple) * multiple)


def _tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """(start, keep_from, keep_to) per tile along one axis; the kept parts partition [0, length)."""
    if length <= tile:
        return [(0, 0, length)]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride)) + [length - tile]
    # hand each overlap over at its middle, so every kept pixel is >= overlap/2 from an inner tile edge
    cuts = [0] + [(a + tile + b) // 2 for a, b in zip(starts, starts[1:])] + [length]
    return [(s, lo, hi) for s, lo, hi in zip(starts, cuts, cuts[1:])]


class Detector:
    """Probabilities -> threshold -> dilation. Subclasses implement `probabilities`."""

    name = "detector"
    default_threshold = 0.5  # the middle of a binary map resized to the image

    def __init__(self, threshold: float | None = None, dilate: int = 0):
        """`threshold`: the probability from which a pixel is masked (None: the detector's default_threshold)."""
        threshold = self.default_threshold if threshold is None else threshold
        assert 0.0 < threshold < 1.0, f"threshold must be in (0, 1), got {threshold}"
        assert dilate >= 0, f"dilate must be >= 0 pixels, got {dilate}"
        self.threshold, self.dilate = threshold, dilate

    def probabilities(self, image: np.ndarray, em: float | None, remeasure: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, float | None]:
        """float32 HxW probabilities of (occluder, paper-coloured occluder), and the em measured away from them
        where `remeasure` allows (not an em the caller measured). Arrays of this call's own: `__call__` reuses the
        first for the result."""
        raise NotImplementedError

    def __call__(self, image: np.ndarray, em: float | None = None) -> Detection:
        """`em`: the text's em in pixels when the caller has measured it, and then trusted; else it is measured
        here, and again away from what the first pass found."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
        remeasure = em is None
        occluder, paper, em = self.probabilities(image, estimate_text_height(image) if remeasure else em, remeasure)
        # a paper-coloured shape is masked whole, not just where it hides ink: the inpainter must
        # not be told the shape of the missing glyphs
        paper_mask = paper >= self.threshold
        # in place where the map is this call's own: on a huge page each map is 4 bytes a pixel
        probability = np.maximum(occluder, paper, out=occluder if occluder.flags.writeable else None)
        del occluder, paper
        mask = probability >= self.threshold
        if self.dilate:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.dilate + 1,) * 2)
            mask, paper_mask = (cv2.dilate(m.view(np.uint8), kernel).view(bool) for m in (mask, paper_mask))
        return Detection(mask, paper_mask, probability, em)


class ModelDetector(Detector):
    """The SegUNet at the normalised text scale, run in overlapping tiles."""

    name = "model"
    # chosen end to end on the tuning sets: at 0.5 it found too little of the occluders on real text, and 0.4 read
    # them better and their clean lines no worse (docs/experiments.md)
    default_threshold = 0.4

    def __init__(
        self,
        model: SegUNet,
        threshold: float | None = None,
        dilate: int = 0,
        tile: int = TILE,
        overlap: int = OVERLAP,
        context_scale: float | None = CONTEXT_SCALE,
        bfloat16: bool | None = None,
    ):
        """`bfloat16`: run the model in bfloat16 (None: where the device computes it natively, see `native_bfloat16`)."""
        super().__init__(threshold, dilate)
        assert tile % model.multiple == 0 and 0 <= overlap < tile, f"bad tiling: tile={tile}, overlap={overlap}"
        assert context_scale is None or 0 < context_scale < 1, f"context_scale must be in (0, 1), got {context_scale}"
        self.model, self.tile, self.overlap, self.context_scale = fold_batchnorm(model), tile, overlap, context_scale
        device = next(model.parameters()).device
        self.bfloat16 = native_bfloat16(device) if bfloat16 is None else bfloat16

    @torch.inference_mode()
    def _segment(self, image: np.ndarray) -> np.ndarray:
        """(2, H, W) float32 probabilities of a uint8 RGB image already at the normalised scale."""
        height, width = image.shape[:2]
        (top, bottom), (left, right) = centre_padding(height, MIN_INPUT[0]), centre_padding(width, MIN_INPUT[1])
        if bottom or right:
            padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
            return self._segment(padded)[:, top : top + height, left : left + width]
        device = next(self.model.parameters()).device
        out = np.empty((2, height, width), np.float32)
        th, tw = (_tile_side(side, self.tile, self.overlap, self.model.multiple) for side in (height, width))
        rows, columns = _tile_spans(height, th, self.overlap), _tile_spans(width, tw, self.overlap)
        tiles = [(ys, xs) for ys in rows for xs in columns]
        per_batch = TILE_BATCH.get(device.type, 1)
        for i in range(0, len(tiles), per_batch):
            batch = tiles[i : i + per_batch]
            crops = np.stack([image[y0 : y0 + th, x0 : x0 + tw] for (y0, _, _), (x0, _, _) in batch])  # (B, th, tw, 3)
            x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float().div_(255)  # (B, 3, th, tw)
            with torch.autocast(device.type, torch.bfloat16, enabled=self.bfloat16):
                logits = self.model(x)
            probs = torch.sigmoid(logits.float()).cpu().numpy()  # (B, 2, th, tw)
            for p, ((y0, ya, yb), (x0, xa, xb)) in zip(probs, batch):
                out[:, ya:yb, xa:xb] = p[:, ya - y0 : yb - y0, xa - x0 : xb - x0]
        return out

    def probabilities(self, image, em, remeasure=True):
        if light_on_dark(image):  # it learnt text darker than its ground, as print is; a sign's is often lighter
            image = 255 - image
        # the maps stay at the model's scale until the end, where they take a page's size: on a huge page
        # two maps of its size (8 bytes a pixel) are the most this holds beside the page itself
        scale = _text_scale(image, em)
        maps = self._maps_at(image, scale)
        if remeasure:
            found = self._found(maps, image.shape[:2])
            if found.any():
                em = estimate_text_height(image, ignore=found)
                rescale = _text_scale(image, em)
                if max(rescale / scale, scale / rescale) > RESCALE:
                    del maps  # before the second pass, not beside it
                    maps = self._maps_at(image, rescale)
            del found
        occluder = _resize(maps[0], image.shape[:2])
        return occluder, _resize(maps[1], image.shape[:2]), em

    def _found(self, maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Where either map, at the image's `size`, reaches the threshold; one map of that size at a time."""
        found = _resize(maps[0], size) >= self.threshold
        found |= _resize(maps[1], size) >= self.threshold
        return found

    def _maps_at(self, image: np.ndarray, scale: float) -> np.ndarray:
        """(2, h, w) float32: both maps at `scale`, averaged with the context view (if any)."""
        normalised = _at_scale(image, scale)
        maps = self._segment(normalised)  # (2, h, w)
        size = normalised.shape[:2]
        del normalised
        if self.context_scale is not None and min(size) >= CONTEXT_MIN_SIDE:
            context = self._segment(_at_scale(image, scale * self.context_scale))
            # its edges are coarse: eroded, they do not widen the mask into the visible text around a shape
            kernel = np.ones((2 * CONTEXT_ERODE + 1,) * 2, np.uint8)
            for fine, coarse in zip(maps, context):  # the mean of the two views, a channel at a time, in place
                fine += _resize(cv2.erode(coarse, kernel), size)
                fine /= 2
        return maps


class ClassicalDetector(Detector):
    """A no-learning baseline: ink far thicker than letter strokes, or of another colour than the text.

    It works at the normalised text scale. Ink is what stands out from the local
    background (a median filter much wider than a stroke) by more than an Otsu
    threshold. An opening by a disc wider than any letter stroke keeps markers,
    bars and blots; the remaining thin ink gives the text colour, and ink whose
    chroma is far from it (a red pen on black print) counts as well. It cannot
    see paper-coloured shapes: `paper_mask` is always empty.
    """

    name = "classical"
    BACKGROUND = 8  # median filter side in em: wider than letters and than most shapes
    MIN_CONTRAST = 40  # least distance (0-255) from the background that counts as ink
    THICK = 3  # disc radius (px at em 24): thicker ink is a marker or a blot, not a letter stroke
    CHROMA = 30  # Lab (a, b) distance from the text colour beyond which ink is another pen

    def probabilities(self, image, em, remeasure=True):
        small = _at_scale(image, _text_scale(image, em))
        # the median runs at a quarter of the scale: a kernel of 8 em is then 49 px, cheap for cv2's uint8 median
        reduced = _resize(small, (max(1, small.shape[0] // 4), max(1, small.shape[1] // 4)))
        background = _resize(cv2.medianBlur(reduced, self.BACKGROUND * TEXT_HEIGHT // 4 | 1), small.shape[:2])
        contrast = cv2.absdiff(small, background).max(axis=2)
        otsu, _ = cv2.threshold(contrast, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        ink = (contrast > max(otsu, self.MIN_CONTRAST)).view(np.uint8)

        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.THICK + 1,) * 2)
        thick = cv2.dilate(cv2.morphologyEx(ink, cv2.MORPH_OPEN, disc), np.ones((3, 3), np.uint8)) & ink
        thin = (ink & ~thick).view(bool)
        chroma = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)[..., 1:].astype(np.float32)
        text_chroma = np.median(chroma[thin], axis=0) if thin.any() else np.array([128, 128], np.float32)
        other_pen = ink & (np.linalg.norm(chroma - text_chroma, axis=2) > self.CHROMA).view(np.uint8)
        other_pen = cv2.morphologyEx(other_pen, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))  # drop anti-aliased fringes

        occluder = _resize((thick | other_pen).astype(np.float32), image.shape[:2])
        return occluder, np.zeros_like(occluder), em


def build_detector(
    name: str = "model", weights: Path | None = None, threshold: float | None = None, dilate: int = 0
) -> Detector:
    """The detector called `name`: "model" (SegUNet, `weights` or the shipped file) or "classical"."""
    if name == "classical":
        return ClassicalDetector(threshold, dilate)
    if name != "model":
        raise ValueError(f"unknown detector {name!r}; valid names: {', '.join(DETECTORS)}")
    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise ModelError(
            f"{path}: detector weights not found; train them with `ocr-restore train detector` "
            "or use `--detector classical`"
        )
    return ModelDetector(load_seg_unet(path, resolve_device()), threshold, dilate)
