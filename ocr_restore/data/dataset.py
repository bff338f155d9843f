"""Training crops for the detector and the inpainter, made on the fly.

Every crop shows text at the models' em size (textscale.TEXT_HEIGHT) with
occluders painted on it. SyntheticCrops draws the text at that size straight
into the crop, which is what makes it fast enough to feed a CPU training loop;
FolderCrops cuts the same crops from a folder of the user's own clean images.

Each item is a dict of float32 tensors:
    clean       3xHxW in [0, 1]  the text without occluders
    occluded    3xHxW in [0, 1]  the same with occluders
    hole        1xHxW            1 where `occluded` differs from `clean` (the exact mask)
    paper_hole  1xHxW            1 where a paper-coloured shape (an erasure) lies, changed or not;
                                 an erasure changes only the ink it hits, so an inpainter that
                                 should not learn the shape of the missing glyphs from the hole
                                 trains on hole | paper_hole

The line sources (RenderedLines, LabelledLines) give single text lines with the same tensors
and their transcript, `text` (a str), for a recognizer's CTC loss on the restoration.
"""

import re
import zlib
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from ..files import find_images, read_image
from ..textscale import TEXT_HEIGHT, centre_padding, text_height
from .occlude import Occlusion, occlude
from .render import KINDS, TextImage, from_image, render

__all__ = ["SyntheticCrops", "FolderCrops", "MixedCrops", "crop_source", "held_out", "fit_crop",
           "fixed_set", "to_item", "LINE_CROP", "RenderedLines", "LabelledLines", "line_source", "line_window",
           "cut_line"]

DETAIL_POINTS = 4096  # points of text kept per folder image, to centre its crops on
HELD_OUT_EVERY = 5  # one image in this many of a training folder is kept out of training, for tuning and evaluation


def held_out(path: str | Path) -> bool:
    """Whether a folder image is one of those kept out of training: chosen by a hash of its file name, so
    the split is the same on every machine and for every run, and a new image does not move the others."""
    return zlib.crc32(Path(path).name.encode()) % HELD_OUT_EVERY == 0


def to_item(sample: TextImage, occlusion: Occlusion) -> dict[str, torch.Tensor]:
    """The tensors of one training crop."""
    image = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float().div_(255)  # (3, H, W)
    plane = lambda m: torch.from_numpy(m[None].astype(np.float32))  # (1, H, W)
    return {
        "clean": image(sample.image),
        "occluded": image(occlusion.image),
        "hole": plane(occlusion.mask),
        "paper_hole": plane(occlusion.paper_area),
    }


def _worker_rng(seed: int) -> np.random.Generator:
    """One independent stream per DataLoader worker, the same on every run."""
    info = get_worker_info()
    return np.random.default_rng([seed, info.id if info else 0])


class SyntheticCrops(IterableDataset):
    """An endless stream of rendered, occluded crops, deterministic for a seed and a worker id."""

    def __init__(
        self,
        kinds: tuple[str, ...] = KINDS,
        crop: tuple[int, int] = (64, 128),
        coverage: tuple[float, float] = (0.01, 0.4),
        seed: int = 0,
        scale_jitter: float = 0.1,
        tight_share: float = 0.0,
    ):
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; choose among {', '.join(KINDS)}")
        self.kinds = tuple(kinds)  # which kinds of text to draw, in equal shares
        self.crop = tuple(crop)  # (H, W) of each crop
        self.coverage = coverage  # range of the occluded fraction of the text region
        self.seed = seed
        # em size drawn log-uniformly within TEXT_HEIGHT * exp(+-scale_jitter), since estimate_text_height is not exact
        self.scale_jitter = scale_jitter
        # share of items rendered at their own extent (a word, a line, a paragraph, as users' crops come)
        # and fitted to the crop by `fit_crop`; the rest are drawn on a canvas of the crop's size
        self.tight_share = tight_share

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        kind = self.kinds[rng.integers(len(self.kinds))]
        size = int(round(TEXT_HEIGHT * np.exp(rng.uniform(-self.scale_jitter, self.scale_jitter))))
        tight = rng.random() < self.tight_share
        text = render(kind, rng, size=size, canvas=None if tight else self.crop)
        item = to_item(text, occlude(text, rng, rng.uniform(*self.coverage)))
        return fit_crop(item, self.crop, rng) if tight else item

    def __iter__(self):
        rng = _worker_rng(self.seed)
        while True:
            yield self.sample(rng)


def fit_crop(item: dict[str, torch.Tensor], crop: tuple[int, int], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Every tensor of `item` cut to `crop` (H, W) at one random place, each side shorter than the
    crop first padded by edge replication around the centre (a model trained on such crops wants its
    small inputs padded the same way at inference: see docs/experiments.md, detector run 6)."""
    height, width = next(iter(item.values())).shape[-2:]
    (top, bottom), (left, right) = centre_padding(height, crop[0]), centre_padding(width, crop[1])
    y0 = int(rng.integers(max(0, height - crop[0]) + 1))
    x0 = int(rng.integers(max(0, width - crop[1]) + 1))

    def fit(t: torch.Tensor) -> torch.Tensor:
        if bottom or right:
            t = F.pad(t[None], (left, right, top, bottom), mode="replicate")[0]
        return t[:, y0 : y0 + crop[0], x0 : x0 + crop[1]].contiguous()

    return {key: fit(t) for key, t in item.items()}


class FolderCrops(IterableDataset):
    """Endless occluded crops cut from a folder of clean images, rescaled to TEXT_HEIGHT.

    Each image's em size comes from textscale.text_height, as at inference. Crops are
    centred on dark-or-light detail (the text) and padded by edge replication where the
    rescaled image is smaller than the crop. The images `held_out` are never used, so
    they can serve to tune and evaluate: `held_out_paths` lists them.
    """

    def __init__(
        self,
        folder: str | Path,
        crop: tuple[int, int] = (64, 128),
        coverage: tuple[float, float] = (0.01, 0.4),
        seed: int = 0,
        scale_jitter: float = 0.1,
        crops_per_image: int = 4,
    ):
        every = find_images(folder)
        self.paths = [p for p in every if not held_out(p)]
        self.held_out_paths = [p for p in every if held_out(p)]
        if not self.paths:
            raise ValueError(f"{folder}: no training images found (of {len(every)} images, {len(self.held_out_paths)} are held out)")
        self.crop = tuple(crop)
        self.coverage = coverage
        self.seed = seed
        self.scale_jitter = scale_jitter
        self.crops_per_image = crops_per_image  # crops cut from each image read, when streaming, to amortise decoding
        self._images: dict[Path, tuple] = {}  # each image with its em and detail, read once per process

    def _image(self, path: Path) -> tuple[np.ndarray, float, np.ndarray]:
        """The image, its em and up to DETAIL_POINTS (y, x) points of dark-or-light detail to centre crops on."""
        if path not in self._images:
            image = read_image(path)
            grey = image.mean(-1)
            detail = np.argwhere(np.abs(grey - np.median(grey)) > 40)
            if len(detail) > DETAIL_POINTS:  # a fixed subset, so a page's crops are the same on every run
                detail = detail[np.random.default_rng(zlib.crc32(path.name.encode())).choice(len(detail), DETAIL_POINTS)]
            if not len(detail):
                detail = np.array([[image.shape[0] // 2, image.shape[1] // 2]])
            self._images[path] = image, text_height(image), detail
        return self._images[path]

    def _crops(self, rng: np.random.Generator, path: Path, count: int):
        image, em, detail = self._image(path)
        H, W = image.shape[:2]
        ch, cw = self.crop
        for _ in range(count):
            target = TEXT_HEIGHT * np.exp(rng.uniform(-self.scale_jitter, self.scale_jitter))
            scale = target / em
            # only the window that becomes the crop is resized: a page costs what a line does
            wh, ww = min(H, int(np.ceil(ch / scale)) + 2), min(W, int(np.ceil(cw / scale)) + 2)
            cy, cx = detail[rng.integers(len(detail))]
            y0, x0 = int(np.clip(cy - wh // 2, 0, H - wh)), int(np.clip(cx - ww // 2, 0, W - ww))
            window = image[y0:y0 + wh, x0:x0 + ww]
            window = cv2.resize(window, (max(1, round(ww * scale)), max(1, round(wh * scale))),
                                interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            pad_y, pad_x = max(0, ch - window.shape[0]), max(0, cw - window.shape[1])
            if pad_y or pad_x:
                top, left = pad_y // 2, pad_x // 2
                window = cv2.copyMakeBorder(window, top, pad_y - top, left, pad_x - left, cv2.BORDER_REPLICATE)
            clean = from_image(np.ascontiguousarray(window[:ch, :cw]), target)
            yield to_item(clean, occlude(clean, rng, rng.uniform(*self.coverage)))

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One crop of a random image."""
        return next(self._crops(rng, self.paths[rng.integers(len(self.paths))], 1))

    def __iter__(self):
        rng = _worker_rng(self.seed)
        while True:
            for k in rng.permutation(len(self.paths)):
                yield from self._crops(rng, self.paths[k], self.crops_per_image)


class MixedCrops:
    """Crops drawn from several sources (each with a `sample(rng)` method) in fixed shares."""

    def __init__(self, sources: list, weights: list[float]):
        assert len(sources) == len(weights) and sources, "one weight per source"
        self.sources = sources
        self.p = np.asarray(weights, float) / np.sum(weights)

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return self.sources[rng.choice(len(self.sources), p=self.p)].sample(rng)


def _split_share(spec: str) -> tuple[str, float]:
    """("SOURCE", WEIGHT) of "SOURCE[:WEIGHT]"; the weight is 1 when none is given."""
    name, _, weight = spec.rpartition(":")
    try:
        return name, float(weight)
    except ValueError:  # no weight given (or a folder name with a colon in it)
        return spec, 1.0


def crop_source(spec: str, **kwargs) -> tuple[object, float]:
    """A crop source and its share from "SOURCE[:WEIGHT]": SOURCE is "synthetic" or a folder of clean images."""
    name, weight = _split_share(spec)
    if name == "synthetic":
        return SyntheticCrops(**kwargs), weight
    if not Path(name).is_dir():
        raise ValueError(f"{name}: not a folder of images, nor 'synthetic' (a source is SOURCE[:WEIGHT])")
    for rendering_only in ("tight_share", "kinds"):  # real images come as they are
        kwargs.pop(rendering_only, None)
    return FolderCrops(name, **kwargs), weight


def fixed_set(n: int, seed: int = 1234, **kwargs) -> dict[str, torch.Tensor]:
    """`n` SyntheticCrops stacked into (n, C, H, W) tensors: the same validation set on every call."""
    stream = iter(SyntheticCrops(seed=seed, **kwargs))
    items = [next(stream) for _ in range(n)]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


# ---------------------------------------------------------------- single lines with their transcripts

LINE_CROP = (48, 320)  # (H, W) of a line crop at TEXT_HEIGHT: two em high, about twenty characters wide
LINE_MARGIN = (0.1, 0.4)  # em of paper kept on each side of a rendered line's ink, as far as its neighbours allow
_LINE_TRIES = 50  # draws a line source makes before it gives up (a render of no usable line, a real line too long)


def _pad_line(a: np.ndarray, crop: tuple[int, int], border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """`a` (HxW or HxWxC, no larger than `crop`) padded to `crop`: around the centre vertically, on the right
    only, so the text starts near the left edge as in a detector's line crop (EasyOCR's CRNN reads a stray
    "~" into a wide blank margin on the left)."""
    pad_y, pad_x = crop[0] - a.shape[0], crop[1] - a.shape[1]
    if not (pad_y or pad_x):
        return np.ascontiguousarray(a)
    return cv2.copyMakeBorder(np.ascontiguousarray(a), pad_y // 2, pad_y - pad_y // 2, 0, pad_x, border, value=0)


def _line_item(sample: TextImage, rng: np.random.Generator, coverage: tuple[float, float]) -> dict:
    item = to_item(sample, occlude(sample, rng, rng.uniform(*coverage)))
    item["text"] = sample.text
    return item


def _usable(text: str, charset: str | None) -> bool:
    return bool(text.strip()) and (charset is None or all(c in charset for c in text))


class LineWindow(NamedTuple):
    """Where `line_window` cuts a rendered sample: rows [top, bottom), columns [left, right), the characters
    char_boxes[first:end] and their transcript."""

    top: int
    bottom: int
    left: int
    right: int
    first: int
    end: int
    text: str


def line_window(sample: TextImage, rng: np.random.Generator, crop: tuple[int, int] = LINE_CROP,
                charset: str | None = None) -> LineWindow | None:
    """Whole words of one line of a rendered `sample` (drawn at its own extent, canvas=None) that fit `crop`;
    None when the line drawn has no such cut.

    A random line and word start, then as many words as fit the width. The window keeps LINE_MARGIN em of
    paper around the ink, less where another word or line comes nearer (never more than half the gap to it,
    and never into another line's rows), so every character in view is in the transcript and wholly in view.
    A line that another line's ink overlaps (a tilted paragraph), words that touch where the cut falls, a word
    longer than the width and characters outside `charset` give None.
    """
    H, W = crop
    em = sample.text_height
    lines = sample.text.split("\n")
    counts = [sum(not c.isspace() for c in line) for line in lines]
    k = int(rng.integers(len(lines)))
    line_start, line_end = sum(counts[:k]), sum(counts[:k + 1])  # the line's characters in char_boxes
    words, index = [], line_start  # (start, end) in the line's text, (start, end) in char_boxes
    for m in re.finditer(r"\S+", lines[k]):
        words.append((m.start(), m.end(), index, index + len(m.group())))
        index += len(m.group())
    if not words or index != line_end:
        return None
    boxes = sample.char_boxes.astype(np.int64)
    if (boxes[line_start:line_end, 2] <= boxes[line_start:line_end, 0]).any():
        return None  # a character without ink in view: it cannot be placed
    ext = [(boxes[b0:b1, 0].min(), boxes[b0:b1, 2].max()) for _, _, b0, b1 in words]
    gaps = [ext[i + 1][0] - ext[i][1] for i in range(len(words) - 1)]  # ink-free columns between words
    ml, mr, mt, mb = rng.uniform(*LINE_MARGIN, 4) * em
    s = int(rng.integers(len(words)))
    left = ext[s][0] - (ml if s == 0 else min(ml, gaps[s - 1] / 2))

    def right_of(e: int) -> float:
        return ext[e][1] + (mr if e + 1 == len(words) else min(mr, gaps[e] / 2))

    e = s
    while e + 1 < len(words) and right_of(e + 1) - left <= W:
        e += 1
    if (s > 0 and gaps[s - 1] < 0) or (e + 1 < len(words) and gaps[e] < 0):
        return None  # a neighbouring word's ink reaches into the cut
    img_h, img_w = sample.image.shape[:2]
    left, right = max(0, int(np.ceil(left))), min(img_w, int(np.floor(right_of(e))))
    b0, b1 = words[s][2], words[e][3]
    y0, y1 = int(boxes[b0:b1, 1].min()), int(boxes[b0:b1, 3].max())
    if right - left > W or y1 - y0 > H:
        return None
    others = np.concatenate([boxes[:line_start], boxes[line_end:]])
    others = others[(others[:, 2] > others[:, 0]) & (others[:, 0] < right) & (others[:, 2] > left)]
    above, below = others[others[:, 3] <= y0], others[others[:, 1] >= y1]
    if len(above) + len(below) < len(others):
        return None  # another line's ink reaches into this one's rows
    top = max(0.0, y0 - mt, float(above[:, 3].max()) if len(above) else 0.0)
    bottom = min(float(img_h), y1 + mb, float(below[:, 1].min()) if len(below) else float(img_h))
    room, spare = H - (y1 - y0), (y0 - top) + (bottom - y1)
    if spare > room:  # keep the margins' proportion, within the crop's height
        top, bottom = y0 - (y0 - top) * room / spare, y1 + (bottom - y1) * room / spare
    text = lines[k][words[s][0]:words[e][1]]
    if not _usable(text, charset):
        return None
    return LineWindow(int(np.ceil(top)), int(np.floor(bottom)), left, right, b0, b1, text)


def cut_line(sample: TextImage, rng: np.random.Generator, crop: tuple[int, int] = LINE_CROP,
             charset: str | None = None) -> TextImage | None:
    """The `line_window` of a rendered `sample`, padded to `crop` (`_pad_line`), with its transcript as `text`;
    None where there is no window. The page is cut and padded, then captured again with the sample's
    degradation, so occluders painted on it still sit under the capture."""
    cut = line_window(sample, rng, crop, charset)
    if cut is None:
        return None
    window = (slice(cut.top, cut.bottom), slice(cut.left, cut.right))
    ink = sample.char_ink[window]
    ink = np.where((ink > cut.first) & (ink <= cut.end), ink - cut.first, 0).astype(np.int32)
    page, background = _pad_line(sample.page[window], crop), _pad_line(sample.background[window], crop)
    shift = np.array([cut.left, cut.top - (crop[0] - (cut.bottom - cut.top)) // 2] * 2)
    return TextImage(
        image=sample.degradation.apply(page), text=cut.text,
        char_boxes=(sample.char_boxes[cut.first:cut.end].astype(np.int64) - shift).astype(np.int32),
        char_ink=_pad_line(ink, crop, cv2.BORDER_CONSTANT), text_height=sample.text_height, paper=sample.paper,
        kind=sample.kind, page=page, background=background, degradation=sample.degradation,
    )


class RenderedLines:
    """Rendered single lines with their transcripts: `cut_line` of renders drawn at their own extent.

    Each item holds the tensors of `to_item` and `text`, the transcript of what is in view.
    """

    def __init__(self, kinds: tuple[str, ...] = KINDS, crop: tuple[int, int] = LINE_CROP,
                 coverage: tuple[float, float] = (0.01, 0.4), scale_jitter: float = 0.1, charset: str | None = None):
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; choose among {', '.join(KINDS)}")
        self.kinds, self.crop, self.coverage, self.scale_jitter = tuple(kinds), tuple(crop), coverage, scale_jitter
        self.charset = charset  # the characters a transcript may hold (a recognizer's alphabet); None: any

    def sample(self, rng: np.random.Generator) -> dict:
        for _ in range(_LINE_TRIES):
            kind = self.kinds[rng.integers(len(self.kinds))]
            size = int(round(TEXT_HEIGHT * np.exp(rng.uniform(-self.scale_jitter, self.scale_jitter))))
            line = cut_line(render(kind, rng, size=size), rng, self.crop, self.charset)
            if line is not None:
                return _line_item(line, rng, self.coverage)
        raise RuntimeError(f"no usable line in {_LINE_TRIES} renders for a {self.crop} crop")


class LabelledLines:
    """Real single lines or words with their transcripts, from a folder's labels.tsv (filename<TAB>text).

    Each image is scaled to TEXT_HEIGHT (its em from textscale.text_height, as at inference; less where the
    line would be taller than the crop) and padded by edge replication, around the centre vertically and on
    the right; a line too long for the crop's width is skipped, never cut, since its transcript has no
    character positions. Images `held_out` (data.dataset), and lines with characters outside `charset`, are
    never used.
    """

    def __init__(self, folder: str | Path, crop: tuple[int, int] = LINE_CROP, coverage: tuple[float, float] = (0.01, 0.4),
                 scale_jitter: float = 0.1, charset: str | None = None):
        self.folder = Path(folder)
        labels = self.folder / "labels.tsv"
        if not labels.is_file():
            raise ValueError(f"{labels}: not found; a line source is 'synthetic' or a folder with labels.tsv "
                             "(filename<TAB>text)")
        entries = []
        for line in labels.read_text(encoding="utf-8").splitlines():
            name, sep, text = line.partition("\t")
            if sep and name and "\\n" not in text:  # single lines only
                entries.append((self.folder / name, text.strip()))
        missing = [p for p, _ in entries if not p.is_file()]
        if missing:
            raise ValueError(f"{missing[0]}: listed in {labels} but not found ({len(missing)} missing)")
        self.held_out_paths = [p for p, _ in entries if held_out(p)]
        self.lines = [(p, t) for p, t in entries if not held_out(p) and _usable(t, charset)]
        if not self.lines:
            raise ValueError(f"{labels}: no training lines ({len(entries)} listed, {len(self.held_out_paths)} held out)")
        self.crop, self.coverage, self.scale_jitter = tuple(crop), coverage, scale_jitter
        self._ems: dict[Path, float] = {}  # each image's em, measured once per process (images are read each time)

    def sample(self, rng: np.random.Generator) -> dict:
        H, W = self.crop
        for _ in range(_LINE_TRIES):
            path, text = self.lines[rng.integers(len(self.lines))]
            target = TEXT_HEIGHT * np.exp(rng.uniform(-self.scale_jitter, self.scale_jitter))
            image = read_image(path)
            if path not in self._ems:
                self._ems[path] = text_height(image)
            h, w = image.shape[:2]
            scale = min(target / self._ems[path], H / h)
            size = (max(1, round(w * scale)), min(H, max(1, round(h * scale))))
            if size[0] > W:
                continue
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            return _line_item(from_image(_pad_line(image, self.crop), self._ems[path] * scale, text), rng, self.coverage)
        raise RuntimeError(f"{self.folder}: none of {_LINE_TRIES} lines drawn fits a {W}-px-wide crop at the text height")


def line_source(spec: str, **kwargs) -> tuple[object, float]:
    """A line source and its share from "SOURCE[:WEIGHT]": SOURCE is "synthetic" (RenderedLines) or a folder
    with labels.tsv (LabelledLines). kwargs: crop, coverage, scale_jitter, charset (and kinds for renders)."""
    name, weight = _split_share(spec)
    if name == "synthetic":
        return RenderedLines(**kwargs), weight
    if not Path(name).is_dir():
        raise ValueError(f"{name}: not a folder of labelled lines, nor 'synthetic' (a source is SOURCE[:WEIGHT])")
    kwargs.pop("kinds", None)
    return LabelledLines(name, **kwargs), weight
