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
"""

import zlib
from pathlib import Path

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
           "fixed_set", "to_item"]

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
    small inputs padded the same way at inference: see models/README.md, detector run 6)."""
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


def crop_source(spec: str, **kwargs) -> tuple[object, float]:
    """A crop source and its share from "SOURCE[:WEIGHT]": SOURCE is "synthetic" or a folder of clean images."""
    name, _, weight = spec.rpartition(":")
    try:
        weight = float(weight)
    except ValueError:  # no weight given (or a folder name with a colon in it)
        name, weight = spec, 1.0
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
