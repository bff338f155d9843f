"""Every curated face exists, is Latin text and draws every printable ASCII char distinctly."""

import string

import numpy as np
import pytest

from ocr_restore.data import fonts
from ocr_restore.data.fonts import FONTS, Font, font_path, fonts_with
from ocr_restore.data.render import _glyph
from ocr_restore.errors import MissingDependencyError

PRINTABLE = [c for c in string.printable if not c.isspace()]


def test_at_least_40_faces_of_every_style():
    assert len(FONTS) >= 40
    assert len({f.file for f in FONTS}) == len(FONTS)
    for tag in ("serif", "sans", "mono", "bold", "italic", "condensed"):
        assert len(fonts_with(tag)) >= 4, tag


@pytest.mark.parametrize("font", FONTS, ids=[f.file.rsplit("/", 1)[-1] for f in FONTS])
def test_font_renders_printable_ascii_distinctly(font):
    glyphs = set()
    for char in PRINTABLE:
        alpha, left, top, ink = _glyph(font, 20, char)
        assert (alpha > ink).any(), f"{font.file}: {char!r} draws nothing"
        glyphs.add((alpha.tobytes(), alpha.shape, left, top))
    assert len(glyphs) == len(PRINTABLE), f"{font.file}: some chars draw the same glyph (a fallback box?)"


def test_glyph_heights_follow_the_em():
    # a capital is 0.6-0.8 em in every face: the size really is pixels per em
    for font in FONTS:
        alpha, _, top, _ = _glyph(font, 40, "H")
        rows = np.nonzero((alpha > 96).any(1))[0]
        assert 0.55 * 40 <= rows[-1] - rows[0] + 1 <= 0.85 * 40, font.file


def test_missing_font_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(fonts, "FONT_ROOT", tmp_path)
    with pytest.raises(MissingDependencyError, match="apt-get install fonts-urw-base35"):
        font_path(Font("opentype/urw-base35/NimbusSans-Regular.otf", "fonts-urw-base35", frozenset({"sans"})))
