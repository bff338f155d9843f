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

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from ..files import find_images, read_image
from ..textscale import TEXT_HEIGHT, estimate_text_height
from .occlude import Occlusion, occlude
from .render import KINDS, TextImage, from_image, render

__all__ = ["SyntheticCrops", "FolderCrops", "centre_padding", "fit_crop", "fixed_set", "to_item"]


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


def centre_padding(size: int, minimum: int) -> tuple[int, int]:
    """(before, after): the padding that brings `size` up to `minimum`, split around the centre."""
    pad = max(0, minimum - size)
    return pad // 2, pad - pad // 2


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

    Each image's em size comes from estimate_text_height; images where no text is
    found are skipped. Crops are centred on dark-or-light detail (the text) and
    padded by edge replication where the rescaled image is smaller than the crop.
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
        self.paths = find_images(folder)
        if not self.paths:
            raise ValueError(f"{folder}: no images found")
        self.crop = tuple(crop)
        self.coverage = coverage
        self.seed = seed
        self.scale_jitter = scale_jitter
        self.crops_per_image = crops_per_image  # crops cut from each image read, to amortise decoding
        self._em: dict[Path, float | None] = {}  # estimated em size per image, found once

    def _crops(self, rng: np.random.Generator, path: Path):
        image = read_image(path)
        if path not in self._em:
            self._em[path] = estimate_text_height(image)
        em = self._em[path]
        if em is None:
            return
        target = TEXT_HEIGHT * np.exp(rng.uniform(-self.scale_jitter, self.scale_jitter))
        scale = target / em
        h, w = image.shape[:2]
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        ch, cw = self.crop
        pad_y, pad_x = max(0, ch - image.shape[0]), max(0, cw - image.shape[1])
        if pad_y or pad_x:
            top, left = pad_y // 2, pad_x // 2
            image = cv2.copyMakeBorder(image, top, pad_y - top, left, pad_x - left, cv2.BORDER_REPLICATE)
        gray = image.mean(-1)
        detail = np.argwhere(np.abs(gray - np.median(gray)) > 40)
        for _ in range(self.crops_per_image):
            cy, cx = detail[rng.integers(len(detail))] if len(detail) else (image.shape[0] // 2, image.shape[1] // 2)
            y0 = int(np.clip(cy - ch // 2, 0, image.shape[0] - ch))
            x0 = int(np.clip(cx - cw // 2, 0, image.shape[1] - cw))
            clean = from_image(np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw]), target)
            yield to_item(clean, occlude(clean, rng, rng.uniform(*self.coverage)))

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One crop of a random image (images without text found are passed over)."""
        for _ in range(100 * len(self.paths)):
            item = next(self._crops(rng, self.paths[rng.integers(len(self.paths))]), None)
            if item is not None:
                return item
        raise ValueError(f"{self.paths[0].parent}: no text found in any image")

    def __iter__(self):
        rng = _worker_rng(self.seed)
        while True:
            for k in rng.permutation(len(self.paths)):
                yield from self._crops(rng, self.paths[k])


def fixed_set(n: int, seed: int = 1234, **kwargs) -> dict[str, torch.Tensor]:
    """`n` SyntheticCrops stacked into (n, C, H, W) tensors: the same validation set on every call."""
    stream = iter(SyntheticCrops(seed=seed, **kwargs))
    items = [next(stream) for _ in range(n)]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
