"""Rendered samples are deterministic and their per-character truth matches the pixels."""

import dataclasses

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocr_restore.data.fonts import FONTS, load_font
from ocr_restore.data.render import INK_LEVEL, KINDS, _line, draw_text, ink_components, otsu_ink, render

LINE = 'AVAWAY To, "Ty." fi 12.50 $ (Hello) World; kerning'


def test_same_seed_same_sample_other_seed_other_sample():
    for kind in KINDS:
        a, b, c = (render(kind, np.random.default_rng(seed)) for seed in (7, 7, 8))
        assert np.array_equal(a.image, b.image) and np.array_equal(a.char_ink, b.char_ink)
        assert a.text == b.text and np.array_equal(a.char_boxes, b.char_boxes)
        assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("font", FONTS[::7], ids=lambda f: f.file.rsplit("/", 1)[-1])
def test_per_char_drawing_reproduces_the_whole_line(font):
    # the independent reference: Pillow drawing the line in one call
    size, baseline, x0 = 23, 40, 6
    reference = Image.new("L", (1200, 60))
    ImageDraw.Draw(reference).text((x0, baseline), LINE, font=load_font(font, size), fill=255, anchor="ls")
    ink = np.asarray(reference) > INK_LEVEL
    _, label = draw_text(font, size, [_line(font, size, LINE, baseline, x0)], (60, 1200))
    assert (ink != (label > 0)).sum() <= 0.01 * ink.sum()
    # reading order: each char's ink starts right of the previous char's start
    n = sum(not c.isspace() for c in LINE)
    starts = [np.nonzero((label == i + 1).any(0))[0][0] for i in range(n)]
    assert all(b >= a - size * 0.15 for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("kind", KINDS)
def test_char_boxes_match_the_rendered_text(kind):
    rng = np.random.default_rng(3)
    for _ in range(6):
        sample = render(kind, rng)
        n = sum(not c.isspace() for c in sample.text)
        assert sample.char_boxes.shape == (n, 4) and sample.char_ink.shape == sample.image.shape[:2]
        assert sample.image.dtype == np.uint8 and sample.image.shape[2] == 3
        assert set(np.unique(sample.char_ink)) <= set(range(n + 1))
        visible = sample.char_boxes[:, 2] > sample.char_boxes[:, 0]
        assert visible.mean() >= 0.95  # a dot-matrix head may drop a tiny mark
        for i, (x0, y0, x1, y1) in enumerate(sample.char_boxes):
            ys, xs = np.nonzero(sample.char_ink == i + 1)
            if len(ys):
                assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        # what the text changed on the page (captured without JPEG, whose blocks spread it) lies in the boxes
        capture = dataclasses.replace(sample.degradation, jpeg=None)
        difference = np.abs(capture.apply(sample.page).astype(int) - capture.apply(sample.background)).max(-1)
        changed = difference > max(12, 0.25 * np.percentile(difference, 99.5))  # faint thermal ink too
        boxes = np.zeros_like(changed)
        for x0, y0, x1, y1 in sample.char_boxes[visible]:
            boxes[y0:y1, x0:x1] = True
        reach = int(3 * sample.degradation.blur + 0.25 * sample.text_height) + 3
        near_boxes = cv2.dilate(boxes.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
        assert (changed & ~near_boxes).sum() <= 0.01 * changed.sum() + 5
        inside = [changed[y0:y1, x0:x1].any() for x0, y0, x1, y1 in sample.char_boxes[visible]]
        assert np.mean(inside) >= 0.95


def test_sizes_are_realistic():
    rng = np.random.default_rng(5)
    heights = {kind: [render(kind, rng).text_height for _ in range(12)] for kind in KINDS}
    assert 10 <= min(heights["docs"]) and max(heights["docs"]) <= 70
    for kind in KINDS:
        assert max(heights[kind]) / min(heights[kind]) > 1.5, kind


def test_canvas_mode_fills_the_canvas_at_the_requested_size():
    rng = np.random.default_rng(9)
    for kind in KINDS:
        sample = render(kind, rng, size=24, canvas=(64, 128))
        assert sample.image.shape == (64, 128, 3)
        assert abs(sample.text_height - 24) < 24 * 0.15
        assert (sample.char_ink > 0).mean() > 0.02


def test_ink_components_on_dark_and_on_light_grounds():
    image = np.full((40, 60, 3), 230, np.uint8)
    image[5:15, 5:20] = 20  # two dark marks
    image[20:35, 30:50] = 40
    for picture in (image, 255 - image):  # light marks on a dark ground are ink too
        assert otsu_ink(picture).sum() == 10 * 15 + 15 * 20
        labels = ink_components(picture)
        assert labels.max() == 2 and (labels[5:15, 5:20] == labels[5, 5]).all()
        assert (labels[20:35, 30:50] == labels[20, 30]).all() and labels[5, 5] != labels[20, 30]
