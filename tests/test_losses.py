"""Each loss term of Liu et al. (2018) against a direct, loop-by-loop computation on small tensors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ocr_restore.nn.losses import InpaintingLoss, LossWeights, hole_psnr, ssim, total_variation


class ToyFeatures(nn.Module):
    """Three 'pooling' outputs of a fixed random conv: enough to check the loss arithmetic."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = self.bn(self.conv(x))
        pools = []
        for _ in range(3):
            x = F.max_pool2d(x, 2)
            pools.append(x)
        return pools


def sample(seed=0, B=2, C=3, H=8, W=12):
    g = torch.Generator().manual_seed(seed)
    out, gt = torch.rand(B, C, H, W, generator=g), torch.rand(B, C, H, W, generator=g)
    mask = (torch.rand(B, 1, H, W, generator=g) > 0.3).float()
    return out, gt, mask


def direct_gram(f):
    f = f.double().numpy()
    C, H, W = f.shape
    G = np.zeros((C, C))
    for a in range(C):
        for b in range(C):
            G[a, b] = sum(f[a, i, j] * f[b, i, j] for i in range(H) for j in range(W))
    return G / (C * H * W)


def direct_tv(image, hole):
    """eq. (7): neighbours in P = the hole dilated by one pixel (8-connected), summed, over N = C H W."""
    img, h = image.double().numpy(), hole.numpy()[0]
    C, H, W = img.shape
    P = np.zeros_like(h, dtype=bool)
    for i in range(H):
        for j in range(W):
            P[i, j] = h[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].any()
    total = 0.0
    for c in range(C):
        for i in range(H):
            for j in range(W):
                if j + 1 < W and P[i, j] and P[i, j + 1]:
                    total += abs(img[c, i, j + 1] - img[c, i, j])
                if i + 1 < H and P[i, j] and P[i + 1, j]:
                    total += abs(img[c, i + 1, j] - img[c, i, j])
    return total / (C * H * W)


def test_each_term_matches_the_paper():
    out, gt, mask = sample()
    net = ToyFeatures().eval()
    total, terms = InpaintingLoss(net)(out, gt, mask)
    B, C, H, W = out.shape
    comp = mask * gt + (1 - mask) * out

    valid = np.mean([sum(abs(out[b, c, i, j] - gt[b, c, i, j]).item() for c in range(C) for i in range(H) for j in range(W)
                         if mask[b, 0, i, j]) / (C * H * W) for b in range(B)])
    hole = np.mean([sum(abs(out[b, c, i, j] - gt[b, c, i, j]).item() for c in range(C) for i in range(H) for j in range(W)
                        if not mask[b, 0, i, j]) / (C * H * W) for b in range(B)])
    with torch.no_grad():
        f_out, f_comp, f_gt = net(out), net(comp), net(gt)
    perceptual = sum(np.mean([(fo[b] - fg[b]).abs().sum().item() / fg[b].numel() for b in range(B)])
                     + np.mean([(fc[b] - fg[b]).abs().sum().item() / fg[b].numel() for b in range(B)])
                     for fo, fc, fg in zip(f_out, f_comp, f_gt))
    style_out = sum(np.mean([np.abs(direct_gram(fo[b]) - direct_gram(fg[b])).sum() / fg.shape[1] ** 2 for b in range(B)])
                    for fo, fg in zip(f_out, f_gt))
    style_comp = sum(np.mean([np.abs(direct_gram(fc[b]) - direct_gram(fg[b])).sum() / fg.shape[1] ** 2 for b in range(B)])
                     for fc, fg in zip(f_comp, f_gt))
    tv = np.mean([direct_tv(comp[b], 1 - mask[b]) for b in range(B)])

    want = dict(valid=valid, hole=hole, perceptual=perceptual, style_out=style_out, style_comp=style_comp, tv=tv)
    assert set(terms) == set(want)
    for name, value in want.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-5, abs=1e-7), name
    assert total.item() == pytest.approx(valid + 6 * hole + 0.05 * perceptual + 120 * (style_out + style_comp) + 0.1 * tv,
                                         rel=1e-5)


def test_tv_ignores_pairs_outside_the_dilated_hole():
    image = torch.zeros(1, 1, 7, 7)
    image[..., :, 4:] = 1  # a vertical edge between columns 3 and 4
    hole = torch.zeros(1, 1, 7, 7)
    hole[..., 3, 1] = 1  # its dilation covers columns 0..2: the edge is outside P
    assert total_variation(image, hole).item() == 0
    hole[..., 3, 2] = 1  # now columns 1..3, still short of column 4
    assert total_variation(image, hole).item() == 0
    hole[..., 3, 3] = 1  # P reaches column 4 on rows 2..4: three pairs across the edge
    assert total_variation(image, hole).item() == pytest.approx(3 / 49)


def test_weights_are_configurable_and_no_perceptual_drops_those_terms():
    out, gt, mask = sample(1)
    weights = LossWeights(valid=2, hole=3, perceptual=0, style=0, tv=5)
    total, terms = InpaintingLoss(None, weights)(out, gt, mask)
    assert set(terms) == {"valid", "hole", "tv"}
    assert total.item() == pytest.approx(2 * terms["valid"].item() + 3 * terms["hole"].item() + 5 * terms["tv"].item())


def test_feature_net_stays_frozen_in_eval_mode():
    net = ToyFeatures()
    loss = InpaintingLoss(net).train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    out, gt, mask = sample(2)
    out.requires_grad_(True)
    loss(out, gt, mask)[0].backward()
    assert out.grad is not None and all(p.grad is None for p in net.parameters())
    assert torch.equal(net.bn.running_mean, torch.zeros(4)), "eval mode must not update BatchNorm statistics"


def test_perfect_output_costs_only_the_target_own_variation():
    _, gt, mask = sample(3)
    total, terms = InpaintingLoss(ToyFeatures())(gt.clone(), gt, mask)
    assert all(terms[k].item() == pytest.approx(0, abs=1e-7) for k in terms if k != "tv")
    assert total.item() == pytest.approx(0.1 * total_variation(gt, 1 - mask).item())


def test_hole_psnr_over_hole_pixels_only():
    gt = torch.zeros(2, 3, 4, 4)
    out = torch.zeros(2, 3, 4, 4)
    mask = torch.ones(2, 1, 4, 4)
    mask[0, :, 0, 0] = 0
    out[0, :, 0, 0] = 0.1  # mse 0.01 over the hole -> 20 dB
    out[0, :, 3, 3] = 0.9  # a known pixel: ignored
    assert hole_psnr(out, gt, mask) == pytest.approx(20.0, rel=1e-4)  # image 1 has no hole: skipped
    assert math.isnan(hole_psnr(out, gt, torch.ones(2, 1, 4, 4)))


def test_ssim_of_constant_images_matches_the_formula():
    a, b = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.6)
    c1 = 0.01 ** 2
    assert ssim(a, b) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1), rel=1e-4)
    x = torch.rand(1, 3, 20, 20)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-5)
    assert ssim(x, 1 - x) < 0.5
