"""estimate_text_height finds the em size of words, lines, paragraphs and pages."""

import cv2
import numpy as np
import pytest

from ocr_restore.data.occlude import occlude
from ocr_restore.data.render import KINDS, render
from ocr_restore.textscale import TEXT_HEIGHT, estimate_text_height, light_on_dark, text_height


@pytest.mark.parametrize("kind", KINDS)
def test_estimate_within_25_percent_on_rendered_text(kind):
    rng = np.random.default_rng(100)
    ratios = []
    for _ in range(40):
        sample = render(kind, rng)
        estimate = estimate_text_height(sample.image)
        ratios.append((estimate or 0) / sample.text_height)
    ratios = np.array(ratios)
    assert np.mean(np.abs(ratios - 1) <= 0.25) >= {"docs": 0.85, "receipts": 0.8, "scene": 0.7}[kind], ratios.round(2)
    assert 0.85 < np.median(ratios) < 1.15


def test_light_text_on_dark_ground():
    sample = render("docs", np.random.default_rng(1), size=30)
    estimate = estimate_text_height(255 - sample.image)
    assert abs(estimate / sample.text_height - 1) <= 0.25


def _paragraphs_on_a_sheet(height: int, width: int, em: int, margin: int, seed: int) -> np.ndarray:
    """Rendered paragraphs of `em` px to the em pasted down a sheet of paper, `margin` px in from its sides."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width, 3), 245, np.uint8)
    y = 2 * margin
    while y < height - 5 * margin:
        block = render("docs", rng, size=em).image
        h, w = min(block.shape[0], height - y), min(block.shape[1], width - 2 * margin)
        page[y:y + h, margin:margin + w] = block[:h, :w]
        y += h + em
    return page


def test_a_300_dpi_page():
    page = _paragraphs_on_a_sheet(3500, 2500, em=50, margin=100, seed=2)  # 12 pt at 300 dpi is 50 px per em
    estimate = estimate_text_height(page)  # its speed is a benchmark's (README), not a timed test's
    assert abs(estimate / 50 - 1) <= 0.25


def test_a_page_with_a_line_or_two():
    # the ink is a few thousandths of the page: a threshold over all of it would split the paper's noise
    ratios = []
    for seed in range(40):
        sample = render("docs", np.random.default_rng(seed), size=21, canvas=(1754, 1240))  # A4 at 150 dpi
        if sample.text.count("\n") < 3:
            ratios.append(estimate_text_height(sample.image) / sample.text_height)
    assert len(ratios) >= 5 and np.all(np.abs(np.array(ratios) - 1) <= 0.25), np.round(ratios, 2)


def test_no_text():
    assert estimate_text_height(np.full((50, 80, 3), 200, np.uint8)) is None
    assert estimate_text_height(np.zeros((0, 0, 3), np.uint8)) is None


def test_shapes_under_the_occluder_mask_are_not_measured():
    # blots and bars merged with words make tall components; where the mask is known they are left out.
    # On lines and pages, that is: on a word crop cut tight around its ink the blind estimate does as well
    rng = np.random.default_rng(3)
    within = {"blind": [], "masked": []}
    for kind in ("docs", "receipts"):
        for _ in range(40):
            sample = render(kind, rng)
            occlusion = occlude(sample, rng, coverage=0.25)
            for way, ignore in (("blind", None), ("masked", occlusion.mask | occlusion.paper_area)):
                estimate = estimate_text_height(occlusion.image, ignore=ignore) or 0
                within[way].append(abs(estimate / sample.text_height - 1) <= 0.2)
    shares = {way: np.mean(hits) for way, hits in within.items()}
    assert shares["masked"] >= shares["blind"] + 0.05, shares


def test_without_measurable_text_a_small_crop_is_taken_for_a_line_and_a_page_for_model_size():
    assert text_height(np.zeros((30, 90, 3), np.uint8)) == pytest.approx(0.8 * 30)
    assert text_height(np.zeros((1000, 900, 3), np.uint8)) == TEXT_HEIGHT


def test_light_on_dark_tells_a_sign_from_print_under_uneven_light():
    """The photographed page is in shade beyond its first third: a global threshold takes the shade for
    the ground's darker majority, and the page for light text on dark."""
    from .conftest import render_lines

    page = render_lines("shadows fall across the page", "from the window at its left", size=28).astype(np.float32)
    x = np.arange(page.shape[1], dtype=np.float32)
    shade = (0.3 + 0.7 / (1 + np.exp((x - 0.3 * x[-1]) / (0.05 * x[-1]))))[None, :, None]
    photographed = (page * shade).astype(np.uint8)
    assert not light_on_dark(page.astype(np.uint8)) and not light_on_dark(photographed)
    assert light_on_dark(255 - page.astype(np.uint8))
    sign = np.where(page < 128, [250, 240, 200], [150, 20, 30]).astype(np.uint8)  # cream letters on red
    assert light_on_dark(sign)


def test_a_page_photographed_on_a_dark_table_is_dark_text_on_light():
    """The table fills the image's border, so the border alone would take it for the ground and the page, one
    region over half the image, for light text; a book's scan on its dark cover does the same."""
    page = _paragraphs_on_a_sheet(1500, 1100, em=30, margin=50, seed=3)
    photo = np.random.default_rng(3).normal(45, 8, (1800, 1400, 3)).clip(0, 255).astype(np.uint8)  # the table
    photo[120:1620, 170:1270] = page
    assert not light_on_dark(photo)
    assert abs(estimate_text_height(photo) / estimate_text_height(page) - 1) <= 0.25  # without it 75 times this


def test_a_word_as_tall_as_its_crop_on_a_speckled_ground_is_not_measured_by_its_specks():
    """A plaque's grain outnumbers the five letters, so the size weights alone took the specks for the text (9 px
    to the em here, for letters of 90): the detector then saw the letters as shapes ten times too large."""
    from .conftest import render_line, speckled_word

    assert estimate_text_height(speckled_word("PLACE", size=120, specks=900, grey=90)) is None  # a word (guess_em)
    assert estimate_text_height(render_line("PLACE", size=120)) == pytest.approx(120, rel=0.25)  # the letters alone
