"""The inpainting stage: fill the holes of an image, leaving every other pixel as it was.

`build_inpainter(name)` returns a callable `inpainter(image, hole) -> restored`
on uint8 HxWx3 RGB images and bool HxW holes (True = occluded):

- "pconv": the Partial Convolution U-Net (Liu et al., ECCV 2018) with the shipped
  weights. It works at the text height it was trained at: each group of holes is
  cut out with 1.5 em of context, scaled to TEXT_HEIGHT, restored in batches and
  scaled back, and only hole pixels are pasted. A word crop and a 300-dpi page
  both work, and a page costs time only where its holes are.
- "telea", "ns": OpenCV's inpainting (Telea 2004; Navier-Stokes), radius 5.
- "none": the image unchanged.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .choices import INPAINTERS
from .errors import InputFileError, ModelError
from .nn.pconv_unet import PConvUNet, load_pconv
from .nn.weights import native_bfloat16, resolve_device, shipped
from .textscale import TEXT_HEIGHT, text_height

__all__ = ["INPAINTERS", "DEFAULT_WEIGHTS", "Inpainter", "OpenCVInpainter", "PassThrough", "PConvInpainter", "build_inpainter"]

DEFAULT_WEIGHTS = shipped("pconv.safetensors")


def _check(image: np.ndarray, hole: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputFileError(f"expected a uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
    if hole.shape != image.shape[:2]:
        raise InputFileError(f"mask of size {hole.shape} does not match the image's {image.shape[:2]}")


class Inpainter:
    """Fills `hole` (bool HxW, True = occluded) in `image` (uint8 HxWx3 RGB); pixels outside the hole are kept."""

    name: str

    def __call__(self, image: np.ndarray, hole: np.ndarray, em: float | None = None) -> np.ndarray:
        """`em`: the text's em in pixels, when the caller has estimated it; else it is estimated here."""
        _check(image, hole)
        hole = hole.astype(bool, copy=False)
        if not hole.any():
            return image.copy()
        # the fill first, then the copy it goes into: on a huge page each is 3 bytes a pixel, and
        # the fill's own work (PConv's plan of the page) is done before the copy is made
        filled = self.fill(image, hole, em)
        restored = image.copy()
        np.copyto(restored, filled, where=hole[..., None])
        return restored

    def fill(self, image: np.ndarray, hole: np.ndarray, em: float | None) -> np.ndarray:
        """An image whose hole pixels are the restoration; other pixels are ignored."""
        raise NotImplementedError


class PassThrough(Inpainter):
    """Leaves the image as it is: the baseline of 'no restoration'."""

    name = "none"

    def fill(self, image, hole, em):
        return image


class OpenCVInpainter(Inpainter):
    """cv2.inpaint: "telea" (Telea 2004, fast marching) or "ns" (Bertalmio et al. 2001, Navier-Stokes)."""

    def __init__(self, name: str, radius: int = 5):
        self.name, self.radius = name, radius
        self.flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[name]

    def fill(self, image, hole, em):
        return cv2.inpaint(image, hole.astype(np.uint8), self.radius, self.flag)


@dataclass
class Crop:
    """One piece of work: restore `context` (y0, y1, x0, x1), paste `paste` (bool, the size of `core`) into `core`."""

    context: tuple[int, int, int, int]
    core: tuple[int, int, int, int]
    paste: np.ndarray


class PConvInpainter(Inpainter):
    """The PConv U-Net applied at the normalised text height, crop by crop around the holes.

    margin_em: context around each hole, in em; tile: the largest hole area restored
    in one crop, in model pixels (bigger groups are split); batch_pixels: model
    pixels per batch, which bounds memory. A full crop, 280 px and 1.5 em (36 px)
    each side, is 352 px: a multiple of the U-Net's stride, 32, so none of it is padding.
    bfloat16: convert the model's weights to bfloat16 (None: where the device computes it natively,
    see `native_bfloat16`); the colour fields and the composition stay in float32.
    """

    name = "pconv"

    def __init__(self, model: PConvUNet, device: str | torch.device = "cpu", margin_em: float = 1.5,
                 tile: int = 280, batch_pixels: int = 2 ** 19, bfloat16: bool | None = None):
        self.device = torch.device(device)
        if bfloat16 is None:
            bfloat16 = native_bfloat16(self.device)
        self.model = model.eval().to(self.device, torch.bfloat16 if bfloat16 else torch.float32)
        self.margin_em, self.tile, self.batch_pixels = margin_em, tile, batch_pixels

    def plan(self, hole: np.ndarray, em: float, scale: float) -> list[Crop]:
        """Crops covering every hole pixel once: one per group of nearby holes, tiled when large."""
        H, W = hole.shape
        margin = math.ceil(self.margin_em * em)
        reach = max(1, round(em / 2))  # holes closer than half an em share a crop
        grouped = cv2.dilate(np.asarray(hole, bool).view(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
        tile = max(1, int(self.tile / scale))  # in image pixels
        crops = []
        for k in range(1, count):
            x, y, w, h = stats[k, :4]
            group = hole[y:y + h, x:x + w] & (labels[y:y + h, x:x + w] == k)
            rows, cols = np.flatnonzero(group.any(1)), np.flatnonzero(group.any(0))
            top, bottom, left, right = y + rows[0], y + rows[-1] + 1, x + cols[0], x + cols[-1] + 1
            for y0 in range(top, bottom, tile):
                for x0 in range(left, right, tile):
                    y1, x1 = min(y0 + tile, bottom), min(x0 + tile, right)
                    paste = group[y0 - y:y1 - y, x0 - x:x1 - x]
                    if paste.any():  # a long diagonal stroke leaves most tiles of its box empty
                        context = (max(0, y0 - margin), min(H, y1 + margin), max(0, x0 - margin), min(W, x1 + margin))
                        crops.append(Crop(context, (y0, y1, x0, x1), paste))
        return crops

    @torch.inference_mode()
    def restore(self, pieces: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Run the model on same-scale pieces (image uint8 hxwx3, hole bool hxw), padded into one batch."""
        h = max(p[0].shape[0] for p in pieces)
        w = max(p[0].shape[1] for p in pieces)
        images = torch.zeros(len(pieces), 3, h, w)
        masks = torch.zeros(len(pieces), 1, h, w)  # padding is unknown to the model
        for i, (image, hole) in enumerate(pieces):
            images[i, :, :image.shape[0], :image.shape[1]] = torch.from_numpy(image).permute(2, 0, 1) / 255
            masks[i, 0, :hole.shape[0], :hole.shape[1]] = torch.from_numpy(~hole)
        out = self.model.inpaint(images.to(self.device), masks.to(self.device)).cpu()
        out = (out * 255).round().byte().permute(0, 2, 3, 1).numpy()  # (B, h, w, 3)
        return [out[i, :image.shape[0], :image.shape[1]] for i, (image, _) in enumerate(pieces)]

    def batches(self, crops: list[Crop], scale: float):
        """Crops of one padded size per batch, at most `batch_pixels` model pixels each: the U-Net pads every
        crop to a multiple of its stride, and a batch pads its crops to the largest, so mixing sizes costs
        the convolutions of the padding (on a page, a third of the pixels)."""
        multiple = self.model.multiple
        by_size = defaultdict(list)
        for crop in crops:
            h, w = self.model_size(crop, scale)
            by_size[(-(-h // multiple) * multiple, -(-w // multiple) * multiple)].append(crop)
        for (h, w), same in sorted(by_size.items()):
            per_batch = max(1, self.batch_pixels // (h * w))
            for start in range(0, len(same), per_batch):
                yield same[start:start + per_batch]

    @staticmethod
    def model_size(crop: Crop, scale: float) -> tuple[int, int]:
        y0, y1, x0, x1 = crop.context
        return max(1, round((y1 - y0) * scale)), max(1, round((x1 - x0) * scale))

    def fill(self, image, hole, em):
        em = em or text_height(image, ignore=hole)
        scale = min(max(TEXT_HEIGHT / em, 1 / 16), 8)
        # the same interpolation for image and hole: a model pixel the occluder touched is a hole
        down, up = (cv2.INTER_AREA, cv2.INTER_LINEAR) if scale < 1 else (cv2.INTER_LINEAR, cv2.INTER_AREA)
        crops = self.plan(hole, em, scale)  # before the copy: its labels of the page are 4 bytes a pixel
        filled = image.copy()
        for batch in self.batches(crops, scale):
            pieces = []
            for crop in batch:
                y0, y1, x0, x1 = crop.context
                h, w = self.model_size(crop, scale)
                pieces.append((cv2.resize(image[y0:y1, x0:x1], (w, h), interpolation=down),
                               cv2.resize(hole[y0:y1, x0:x1].astype(np.float32), (w, h), interpolation=down) > 0))
            for crop, restored in zip(batch, self.restore(pieces)):
                y0, y1, x0, x1 = crop.context
                back = cv2.resize(restored, (x1 - x0, y1 - y0), interpolation=up)
                cy0, cy1, cx0, cx1 = crop.core
                filled[cy0:cy1, cx0:cx1][crop.paste] = back[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0][crop.paste]
        return filled


def build_inpainter(name: str = "pconv", weights: str | Path | None = None, device: str = "auto") -> Inpainter:
    """The inpainter called `name` (one of INPAINTERS); "pconv" loads `weights`, by default models/pconv.safetensors."""
    if name not in INPAINTERS:
        raise ValueError(f"unknown inpainter {name!r}; choose one of {', '.join(INPAINTERS)}")
    if name == "none":
        return PassThrough()
    if name != "pconv":
        return OpenCVInpainter(name)
    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise ModelError(f"{path}: PConv weights not found; train them with `ocr-restore train inpainter` "
                         "or use a classical inpainter with `--inpainter telea`")
    device = resolve_device(device)
    return PConvInpainter(load_pconv(path, device), device)
