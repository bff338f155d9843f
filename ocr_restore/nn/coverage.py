"""Ink coverage: a text image as paper, ink and how much of each pixel the ink covers.

The glyph-first inpainter predicts coverage alpha in [0, 1] and composes
alpha * ink + (1 - alpha) * paper, so a crisp stroke is as easy to draw as a
blank, and a grey smear has to be asked for. Paper and ink colours are fields
estimated from the known pixels around the holes, by normalised Gaussian
convolution (Knutsson and Westin 1993) of each class of an Otsu split of the
known grey levels; the ink is the minority class, so light text on a dark ground
works as dark on light does. All of it is batched torch with no gradients, the
same in training and at inference. Masks: 1 = known, 0 = hole.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["Fields", "estimate_fields", "coverage", "compose"]

PAPER_SIGMA = 6.0  # model pixels (a quarter em at 24 px per em): paper follows uneven light and coloured grounds
INK_SIGMA = 12.0  # half an em: ink pixels are sparse, so the ink colour is averaged wider
MIN_CONTRAST = 0.12  # ink and paper closer than this in grey are taken for no ink at all (blank paper, noise)
GLOBAL_WEIGHT = 1e-3  # where no pixel of a class is near, its field falls back to the image's mean of the class
BINS = 64


class Fields(NamedTuple):
    """Colour fields (B, C, H, W) of the paper and of the ink."""

    paper: torch.Tensor
    ink: torch.Tensor


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with zero padding, so normalised convolution counts only real pixels."""
    radius = min(int(3 * sigma), max(x.shape[-2:]))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    C = x.shape[1]
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(C, 1, 1, -1), padding=(0, radius), groups=C)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(C, 1, -1, 1), padding=(radius, 0), groups=C)


def _normalised_blur(image: torch.Tensor, weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """The weighted local mean of `image` (B, C, H, W) under `weight` (B, 1, H, W), falling back to the
    weighted global mean where no weighted pixel is near; NaN where no pixel has weight.

    The fields are smooth, so they are found on a grid `sigma / 3` times coarser and interpolated back:
    on a page, a blur at full size would cost half as much as the U-Net itself."""
    step = max(1, int(sigma // 3))
    H, W = image.shape[2:]
    weighted = F.pad(torch.cat([image * weight, weight], 1), (0, -W % step, 0, -H % step))  # zero weight: unseen
    weighted = F.avg_pool2d(weighted, step)
    both = _gaussian_blur(weighted, sigma / step) + GLOBAL_WEIGHT * weighted.mean((2, 3), keepdim=True)
    local = both[:, :-1] / both[:, -1:]
    if step > 1:
        local = F.interpolate(local, scale_factor=step, mode="bilinear", align_corners=False)[:, :, :H, :W]
    return local


def _otsu(grey: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1): Otsu's threshold of each image's known grey levels."""
    B = grey.shape[0]
    index = (grey.clamp(0, 1) * (BINS - 1)).round().long().view(B, -1)
    hist = torch.zeros(B, BINS, dtype=grey.dtype, device=grey.device).scatter_add_(1, index, known.view(B, -1))
    p = hist / hist.sum(1, keepdim=True).clamp(min=1)
    levels = torch.arange(BINS, dtype=grey.dtype, device=grey.device) / (BINS - 1)
    omega, mu = p.cumsum(1), (p * levels).cumsum(1)
    between = (mu[:, -1:] * omega - mu) ** 2 / (omega * (1 - omega)).clamp(min=1e-9)
    return ((between.argmax(1).to(grey.dtype) + 0.5) / (BINS - 1)).view(B, 1, 1, 1)


@torch.no_grad()
def estimate_fields(image: torch.Tensor, known: torch.Tensor) -> Fields:
    """Paper and ink colour fields of `image` (B, C, H, W) in [0, 1] from its `known` pixels (B, 1, H, W)."""
    known = known.to(image.dtype)
    grey = image.mean(1, keepdim=True)
    threshold = _otsu(grey, known)
    dark = (grey <= threshold).to(image.dtype) * known
    dark_is_ink = dark.sum((2, 3), keepdim=True) <= 0.5 * known.sum((2, 3), keepdim=True)
    ink = torch.where(dark_is_ink, dark, known - dark)
    # anti-aliased edges belong to neither: grow the ink by a pixel before taking the paper, and weigh
    # ink pixels by how far they lie past the threshold, so the ink's colour is its core's
    paper_weight = known * (1 - F.max_pool2d(ink, 3, stride=1, padding=1))
    ink_weight = ink * (grey - threshold).abs()
    paper = _normalised_blur(image, paper_weight, PAPER_SIGMA)
    ink_field = _normalised_blur(image, ink_weight, INK_SIGMA)
    # no paper pixel at all (a crop all hole or all ink): the known pixels' mean, or white
    mean_known = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(min=1)
    mean_known = torch.where(known.sum((2, 3), keepdim=True) > 0, mean_known, torch.ones_like(mean_known))
    paper = torch.where(torch.isfinite(paper), paper, mean_known)
    # no ink, or ink hardly unlike the paper: the opposite extreme, so that nothing reads as ink
    opposite = (paper.mean(1, keepdim=True) < 0.5).to(image.dtype).expand_as(paper)
    faint = ~torch.isfinite(ink_field) | ((ink_field - paper).mean(1, keepdim=True).abs() < MIN_CONTRAST)
    return Fields(paper, torch.where(faint, opposite, ink_field))


def coverage(image: torch.Tensor, fields: Fields) -> torch.Tensor:
    """(B, 1, H, W): each pixel's share of ink, its colour projected on the paper-to-ink line, in [0, 1]."""
    axis = fields.ink - fields.paper
    alpha = ((image - fields.paper) * axis).sum(1, keepdim=True) / (axis ** 2).sum(1, keepdim=True).clamp(min=1e-6)
    return alpha.clamp(0, 1)


def compose(alpha: torch.Tensor, fields: Fields) -> torch.Tensor:
    """alpha * ink + (1 - alpha) * paper."""
    return alpha * fields.ink + (1 - alpha) * fields.paper
