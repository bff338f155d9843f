"""Ink coverage: paper and ink colours found around holes, coverage that composes back to the image."""

import cv2
import numpy as np
import pytest
import torch

from ocr_restore.nn.coverage import INK_SIGMA, PAPER_SIGMA, _normalised_blur, compose, coverage, estimate_fields

from .conftest import render_line, stroke_over


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def tinted(image: np.ndarray, ink, paper) -> np.ndarray:
    """Black-on-white `image` redrawn with its anti-aliasing as the blend of two colours."""
    share = 1 - image[..., :1].astype(np.float32) / 255  # PIL's own ink coverage
    return np.round(share * np.array(ink) + (1 - share) * np.array(paper)).astype(np.uint8)


@pytest.mark.parametrize("ink, paper", [((0, 0, 0), (255, 255, 255)), ((250, 250, 250), (30, 40, 60)),
                                        ((180, 20, 20), (250, 230, 150))])
def test_coverage_is_the_renderers_own_ink_share_for_any_colours(ink, paper):
    line = render_line(size=24)
    image = tensor(tinted(line, ink, paper))
    fields = estimate_fields(image, torch.ones_like(image[:, :1]))
    truth = torch.from_numpy(1 - line[..., 0].astype(np.float32) / 255)
    alpha = coverage(image, fields)[0, 0]
    assert (alpha - truth).abs().mean() < 0.03
    assert (compose(alpha[None, None], fields) - image).abs().max() < 0.12


def test_fields_inside_a_hole_come_from_around_it():
    line = tinted(render_line(size=24), (20, 30, 120), (240, 235, 200))
    occluded, hole = stroke_over(line, colour=(255, 0, 0), thickness=9)
    image, known = tensor(occluded), torch.from_numpy(~hole)[None, None].float()
    fields = estimate_fields(image, known)
    inside = torch.from_numpy(hole)
    paper = fields.paper[0].permute(1, 2, 0)[inside] * 255
    ink = fields.ink[0].permute(1, 2, 0)[inside] * 255
    assert (paper - torch.tensor([240, 235, 200])).abs().max() < 25, "the stroke's red must not leak into the paper"
    assert (ink - torch.tensor([20, 30, 120])).abs().mean() < 40


def test_blank_paper_has_no_ink():
    rng = np.random.default_rng(0)
    paper = np.clip(rng.normal(200, 4, (48, 96, 3)), 0, 255).astype(np.uint8)  # grain, no text
    image = tensor(paper)
    fields = estimate_fields(image, torch.ones_like(image[:, :1]))
    assert coverage(image, fields).max() < 0.2


def test_an_image_all_hole_gets_finite_fields():
    image = torch.rand(2, 3, 16, 32)
    fields = estimate_fields(image, torch.zeros(2, 1, 16, 32))
    assert torch.isfinite(fields.paper).all() and torch.isfinite(fields.ink).all()


@pytest.mark.parametrize("sigma", [PAPER_SIGMA, INK_SIGMA])
def test_fields_found_on_a_coarse_grid_match_the_full_size_normalised_convolution(sigma):
    """The reference: OpenCV's Gaussian blur of the weighted image and of the weights, at full size."""
    line = tinted(render_line(size=24), (20, 30, 120), (240, 235, 200)).astype(np.float32) / 255
    rng = np.random.default_rng(0)
    line *= np.linspace(0.8, 1, line.shape[1], dtype=np.float32)[None, :, None]  # uneven light across the line
    weight = (line.mean(2) < 0.5).astype(np.float32) * (rng.random(line.shape[:2]) < 0.7)  # sparse, as ink is
    size = (2 * int(3 * sigma) + 1,) * 2
    blur = lambda a: cv2.GaussianBlur(a, size, sigma, borderType=cv2.BORDER_CONSTANT)
    numerator, denominator = blur(line * weight[..., None]), blur(weight)
    near = denominator > 0.05  # where the local mean, not the global fallback, decides
    want = numerator[near] / denominator[near, None]
    got = _normalised_blur(tensor((line * 255).round().astype(np.uint8)), torch.from_numpy(weight)[None, None], sigma)
    got = got[0].permute(1, 2, 0).numpy()[near]
    assert near.mean() > 0.3
    assert np.abs(got - want).max() < 6 / 255
