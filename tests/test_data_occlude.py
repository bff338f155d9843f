"""Occluders: the mask is exactly the changed pixels, coverage follows the request, hidden chars are counted."""

import dataclasses

import cv2
import numpy as np
import pytest

from ocr_restore.data.occlude import COLOURS, SHAPE_KINDS, STYLES, hidden_share, occlude, recoverable, text_region
from ocr_restore.data.render import KINDS, from_image, render


def _samples(seed: int, count: int = 3):
    rng = np.random.default_rng(seed)
    return [render(kind, rng) for kind in KINDS for _ in range(count)]


def test_mask_is_exactly_the_changed_pixels():
    rng = np.random.default_rng(0)
    for sample in _samples(1):
        for coverage in (0.01, 0.2, 0.4):
            occlusion = occlude(sample, rng, coverage)
            assert occlusion.image.dtype == np.uint8 and occlusion.image.shape == sample.image.shape
            assert np.array_equal(occlusion.mask, (occlusion.image != sample.image).any(-1))
            assert occlusion.mask.any()
            # every changed pixel is owned by a shape, and only changed pixels are
            assert np.array_equal(occlusion.shape_ids > 0, occlusion.mask)
            assert occlusion.shape_ids.max() <= len(occlusion.shapes)


@pytest.mark.parametrize("coverage", [0.01, 0.1, 0.4])
def test_coverage_follows_the_request(coverage):
    rng = np.random.default_rng(2)
    achieved, changed = [], []
    for sample in _samples(3, 4):
        occlusion = occlude(sample, rng, coverage)
        x0, y0, x1, y1 = text_region(sample)
        achieved.append(occlusion.coverage)
        changed.append(occlusion.mask[y0:y1, x0:x1].mean())
    achieved = np.array(achieved)
    # the mask is the painted area, less white-outs on bare paper, plus blur and JPEG spill
    assert 0.3 * coverage < np.median(changed) < 2 * coverage
    assert np.all(np.abs(achieved - coverage) <= 0.2 * coverage + 0.002), achieved
    assert abs(np.median(achieved) - coverage) <= 0.1 * coverage


def test_hidden_fraction_per_char():
    rng = np.random.default_rng(4)
    for sample in _samples(5, 2):
        occlusion = occlude(sample, rng, 0.3)
        n = len(sample.char_boxes)
        assert occlusion.char_hidden.shape == (n,)
        assert np.all((0 <= occlusion.char_hidden) & (occlusion.char_hidden <= 1))
        for i in range(n):
            ink = sample.char_ink == i + 1
            under_mask = (ink & occlusion.mask).sum() / max(1, ink.sum())
            if not any(s.style == "highlighter" for s in occlusion.shapes):
                assert occlusion.char_hidden[i] >= under_mask - 1e-6  # hidden includes all changed ink
        assert np.array_equal(occlusion.wholly_hidden, occlusion.char_hidden >= 0.95)
        highlighted = np.isin(occlusion.shape_ids, [k for k, s in enumerate(occlusion.shapes, 1) if s.style == "highlighter"])
        assert (occlusion.hidden >= occlusion.mask & ~highlighted).all()  # what changed is lost, but under a highlighter
        assert np.allclose(occlusion.char_hidden, hidden_share(sample.char_ink, occlusion.hidden, n))


def test_a_char_under_a_bar_is_wholly_hidden():
    rng = np.random.default_rng(6)
    hits = 0
    for sample in _samples(7, 4):
        occlusion = occlude(sample, rng, 0.4)
        hits += occlusion.wholly_hidden.sum()
        assert occlusion.wholly_hidden.sum() <= len(sample.char_boxes)
    assert hits > 0


def test_deterministic_and_varied():
    sample = render("docs", np.random.default_rng(8))
    a, b = (occlude(sample, np.random.default_rng(1), 0.2) for _ in range(2))
    c = occlude(sample, np.random.default_rng(2), 0.2)
    assert np.array_equal(a.image, b.image) and a.shapes == b.shapes
    assert not np.array_equal(a.mask, c.mask)
    rng = np.random.default_rng(9)
    shapes = [s for sample in _samples(10, 4) for s in occlude(sample, rng, 0.3).shapes]
    assert {s.kind for s in shapes} == set(SHAPE_KINDS)
    assert {s.style for s in shapes} == set(STYLES)
    assert {s.colour for s in shapes} == set(COLOURS)


def test_kinds_restrict_the_shapes_and_nothing_else_of_the_draw():
    rng = np.random.default_rng(12)
    thin = [s for sample in _samples(13, 3) for s in occlude(sample, rng, 0.3, kinds=("stroke", "scribble")).shapes]
    assert {s.kind for s in thin} == {"stroke", "scribble"}
    sample = render("docs", np.random.default_rng(8))
    every = occlude(sample, np.random.default_rng(1), 0.2, kinds=SHAPE_KINDS)
    assert np.array_equal(every.image, occlude(sample, np.random.default_rng(1), 0.2).image)
    with pytest.raises(AssertionError, match="kinds must be among"):
        occlude(sample, rng, 0.2, kinds=("bar",))


def test_paper_shapes_erase_text_and_nothing_else():
    rng = np.random.default_rng(11)
    paper_area = erased = ink_under_paper = changed_ink_under_paper = 0
    for sample in _samples(12, 4):
        # without JPEG blocks or blur, which carry other shapes' changes under a white-out
        capture = dataclasses.replace(sample.degradation, jpeg=None, blur=0.0)
        sample = dataclasses.replace(sample, degradation=capture, image=capture.apply(sample.page))
        occlusion = occlude(sample, rng, 0.4)
        ink = (np.abs(sample.page.astype(int) - sample.background) > 30).any(-1)
        ink_under_paper += (ink & occlusion.paper_area).sum()
        changed_ink_under_paper += (ink & occlusion.paper_area & occlusion.mask).sum()
        # the same shapes on the bare paper: a white-out over nothing changes (almost) nothing
        blank = dataclasses.replace(sample, page=sample.background, image=capture.apply(sample.background))
        occlusion = occlude(blank, np.random.default_rng(0), 0.4)
        paper_ids = [k + 1 for k, s in enumerate(occlusion.shapes) if s.colour == "paper"]
        paper_area += occlusion.paper_area.sum()
        erased += np.isin(occlusion.shape_ids, paper_ids).sum()  # edges over other shapes only
    assert ink_under_paper > 0 and paper_area > 0
    assert changed_ink_under_paper > 0.9 * ink_under_paper
    assert erased < 0.15 * paper_area


def test_real_images_without_ground_truth():
    image = render("scene", np.random.default_rng(13)).image
    sample = from_image(image, 30.0, "word")
    occlusion = occlude(sample, np.random.default_rng(0), 0.2)
    assert np.array_equal(occlusion.mask, (occlusion.image != image).any(-1))
    assert 0.15 <= occlusion.coverage <= 0.25 and occlusion.char_hidden.shape == (0,)


def test_recoverable_erases_the_wholly_hidden_characters_only():
    rng = np.random.default_rng(6)
    erased_some = False
    for _ in range(12):
        sample = render("docs", rng)
        occlusion = occlude(sample, rng, 0.3)
        image = recoverable(sample.image, sample.char_ink, occlusion, spread=2)
        assert image.dtype == np.uint8 and image.shape == sample.image.shape
        hidden = np.isin(sample.char_ink, np.flatnonzero(occlusion.wholly_hidden) + 1)
        in_view = (sample.char_ink > 0) & ~hidden
        changed = (image != sample.image).any(-1)
        # the ink of every character in view is the clean image's, and so is everything far from the erased ink
        assert not (changed & in_view).any()
        assert not (changed & ~cv2.dilate(hidden.view(np.uint8), np.ones((15, 15), np.uint8)).view(bool)).any()
        if hidden.sum() > 50:
            erased_some = True
            # the paper there: a median much wider than a letter
            paper = cv2.medianBlur(sample.image, int(2 * sample.text_height) | 1)[hidden].astype(np.float32)
            before = np.abs(sample.image[hidden] - paper).max(-1).mean()
            after = np.abs(image[hidden] - paper).max(-1).mean()
            assert after < 0.3 * before, (before, after)  # the hidden glyphs are paper now
    assert erased_some


def test_recoverable_is_the_clean_image_when_nothing_is_wholly_hidden():
    sample = render("receipts", np.random.default_rng(7))
    occlusion = occlude(sample, np.random.default_rng(8), 0.01)
    occlusion.hidden[:] = False
    assert np.array_equal(recoverable(sample.image, sample.char_ink, occlusion, spread=2), sample.image)


def test_hidden_share_counts_each_label():
    ink = np.array([[1, 1, 0, 2],
                    [1, 1, 0, 2]])
    hidden = np.array([[True, False, True, True],
                       [False, False, True, True]])
    assert np.allclose(hidden_share(ink, hidden, 3), [0.25, 1.0, 0.0])  # label 3 has no ink
