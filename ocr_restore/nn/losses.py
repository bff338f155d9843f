"""The inpainting loss of Liu et al. (ECCV 2018), eq. (3)-(7), and the metrics we validate with.

    L = L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out + L_style_comp) + 0.1 L_tv

and, for the glyph-first model, + 1 L_coverage: a binary cross-entropy between the predicted and
the true ink coverage over the holes, weighted toward ink as GSDM's structure prior is (Zhu et al.,
AAAI 2024), so that leaving a stroke out costs more than drawing paper. Masks follow the paper: 1 = known pixel, 0 = hole. Every term is averaged over
the batch; within an image each follows the paper's normalisation. Training may add LossWeights.ctc
times a recognizer's CTC loss on text lines (train/inpainter.py), off by default.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LossWeights", "InpaintingLoss", "gram", "total_variation", "hole_psnr", "ssim"]


@dataclass
class LossWeights:
    valid: float = 1.0  # L1 over the known pixels
    hole: float = 6.0  # L1 over the hole pixels
    perceptual: float = 0.05  # L1 between pool1..pool3 features, of both the output and the composite
    style: float = 120.0  # L1 between Gram matrices of those features, applied to L_style_out and L_style_comp
    tv: float = 0.1  # total variation of the composite over the 1-pixel dilation of the hole
    coverage: float = 1.0  # ink-weighted BCE of the ink coverage over the holes (glyph-first models only)
    ink: float = 4.0  # a hole pixel's BCE counts 1 + ink * its true coverage
    # CTC loss of a pretrained recognizer's reading of the composite of a sub-batch of text lines against their
    # transcripts (train/inpainter.py, nn/recognizer.py); 0 leaves it out, and the recognizer is then not needed
    ctc: float = 0.0


def gram(features: torch.Tensor) -> torch.Tensor:
    """K_p Psi^T Psi with K_p = 1 / (C H W): the (B, C, C) Gram matrices of (B, C, H, W) features."""
    B, C, H, W = features.shape
    flat = features.reshape(B, C, H * W)
    return flat @ flat.transpose(1, 2) / (C * H * W)  # (B, C, C)


def total_variation(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """L_tv of the paper, eq. (7), per image: the L1 differences between horizontal and vertical
    neighbours that both lie in P, the 1-pixel (3x3, 8-connected) dilation of the hole,
    divided by N = C H W, the number of elements of the image; then averaged over the batch.

    `image` (B, C, H, W); `hole` (B, 1, H, W), 1 = hole.
    """
    region = F.max_pool2d(hole, 3, stride=1, padding=1)  # P
    across = region[..., :, 1:] * region[..., :, :-1]  # both (i, j) and (i, j+1) in P
    down = region[..., 1:, :] * region[..., :-1, :]  # both (i, j) and (i+1, j) in P
    tv = ((image[..., :, 1:] - image[..., :, :-1]).abs() * across).sum((1, 2, 3)) \
        + ((image[..., 1:, :] - image[..., :-1, :]).abs() * down).sum((1, 2, 3))
    return (tv / image[0].numel()).mean()


class InpaintingLoss(nn.Module):
    """The loss of Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018.

    `feature_net` maps an image (B, 3, H, W) in [0, 1] to [pool1, pool2, pool3]
    and is kept frozen in eval mode; with None (--perceptual none) the perceptual
    and style terms are left out. `forward` returns the weighted total and the
    unweighted terms.
    """

    def __init__(self, feature_net: nn.Module | None, weights: LossWeights | None = None):
        super().__init__()
        self.feature_net = feature_net
        self.weights = weights or LossWeights()
        if feature_net is not None:
            feature_net.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.feature_net is not None:
            self.feature_net.eval()  # its BatchNorm statistics are part of the frozen network
        return self

    def forward(self, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                alpha_logit: torch.Tensor | None = None, alpha_target: torch.Tensor | None = None):
        """`output`, `target` (B, C, H, W) and `mask` (B, 1 or C, H, W), 1 = known; returns (total, terms).
        With `alpha_logit` and `alpha_target` (B, 1, H, W), the coverage term is added."""
        mask = mask.to(output.dtype)
        error = (output - target).abs()
        # each L1 mean is over N_Igt = C H W elements per image, hole or not
        terms = {"valid": (mask * error).mean(), "hole": ((1 - mask) * error).mean()}
        composite = mask * target + (1 - mask) * output
        if self.feature_net is not None:
            with torch.no_grad():
                feats_gt = self.feature_net(target)
            # output and composite in one pass: the frozen net's eval-mode BatchNorm treats samples independently
            feats = self.feature_net(torch.cat([output, composite]))
            feats_out, feats_comp = zip(*(f.chunk(2) for f in feats))
            terms["perceptual"] = sum((fo - fg).abs().mean() + (fc - fg).abs().mean()
                                      for fo, fc, fg in zip(feats_out, feats_comp, feats_gt))
            grams_gt = [gram(f) for f in feats_gt]
            terms["style_out"] = sum((gram(f) - g).abs().mean() for f, g in zip(feats_out, grams_gt))
            terms["style_comp"] = sum((gram(f) - g).abs().mean() for f, g in zip(feats_comp, grams_gt))
        hole = 1 - mask.amin(1, keepdim=True)  # a pixel is a hole if any channel is
        terms["tv"] = total_variation(composite, hole)
        w = self.weights
        total = (w.valid * terms["valid"] + w.hole * terms["hole"] + w.tv * terms["tv"])
        if alpha_logit is not None:
            bce = F.binary_cross_entropy_with_logits(alpha_logit, alpha_target, reduction="none")
            terms["coverage"] = (hole * (1 + w.ink * alpha_target) * bce).mean()
            total = total + w.coverage * terms["coverage"]
        if self.feature_net is not None:
            total = total + w.perceptual * terms["perceptual"] + w.style * (terms["style_out"] + terms["style_comp"])
        return total, terms


@torch.no_grad()
def hole_psnr(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR in dB over the hole pixels (mask 0) of each image, images in [0, 1], averaged over
    the images that have a hole; nan if none has."""
    hole = (1 - mask.to(output.dtype)).expand_as(output)
    counts = hole.sum((1, 2, 3))
    mse = (((output.clamp(0, 1) - target) ** 2) * hole).sum((1, 2, 3)) / counts.clamp(min=1)
    psnr = -10 * torch.log10(mse.clamp(min=1e-10))
    return psnr[counts > 0].mean().item() if (counts > 0).any() else math.nan


@torch.no_grad()
def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5, valid region) of images in [0, 1]."""
    assert min(a.shape[-2:]) >= 11, f"SSIM needs images of at least 11x11 pixels, got {tuple(a.shape[-2:])}"
    C = a.shape[1]
    x = torch.arange(11, dtype=a.dtype, device=a.device) - 5
    g = torch.exp(-x ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(C, 1, 11, 11)  # one depthwise window per channel

    def blur(t):
        return F.conv2d(t, window, groups=C)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean().item()
