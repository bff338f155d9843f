"""The curated Latin font faces the renderer draws with, all from Debian font packages.

Each face carries style tags so a kind of text can ask for the faces that suit it
(receipts favour mono and condensed faces, scene text favours bold ones).
Symbol, dingbat, calligraphic and non-Latin faces are left out on purpose.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from ..errors import MissingDependencyError

__all__ = ["Font", "FONTS", "FONT_ROOT", "font_path", "load_font", "fonts_with"]

FONT_ROOT = Path("/usr/share/fonts")


@dataclass(frozen=True)
class Font:
    """One font face: a file under FONT_ROOT, the Debian package that ships it, and its style tags."""

    file: str  # path relative to FONT_ROOT
    package: str  # Debian package to apt-get install when the file is missing
    tags: frozenset[str]  # among serif, sans, mono, bold, italic, condensed, light


def _faces(package: str, folder: str, faces: str) -> list[Font]:
    """Parse `name:tag,tag name:tag ...` into Fonts of one package."""
    fonts = []
    for face in faces.split():
        name, _, tags = face.partition(":")
        fonts.append(Font(f"{folder}/{name}", package, frozenset(tags.split(","))))
    return fonts


FONTS: tuple[Font, ...] = tuple(
    _faces("fonts-dejavu-core", "truetype/dejavu", """
        DejaVuSans.ttf:sans DejaVuSans-Bold.ttf:sans,bold
        DejaVuSansMono.ttf:mono,sans DejaVuSansMono-Bold.ttf:mono,sans,bold
        DejaVuSerif.ttf:serif DejaVuSerif-Bold.ttf:serif,bold
    """)
    + _faces("fonts-dejavu-extra", "truetype/dejavu", """
        DejaVuSans-Oblique.ttf:sans,italic DejaVuSans-BoldOblique.ttf:sans,bold,italic
        DejaVuSans-ExtraLight.ttf:sans,light
        DejaVuSansCondensed.ttf:sans,condensed DejaVuSansCondensed-Bold.ttf:sans,condensed,bold
        DejaVuSansCondensed-Oblique.ttf:sans,condensed,italic
        DejaVuSansCondensed-BoldOblique.ttf:sans,condensed,bold,italic
        DejaVuSansMono-Oblique.ttf:mono,sans,italic DejaVuSansMono-BoldOblique.ttf:mono,sans,bold,italic
        DejaVuSerif-Italic.ttf:serif,italic DejaVuSerif-BoldItalic.ttf:serif,bold,italic
        DejaVuSerifCondensed.ttf:serif,condensed DejaVuSerifCondensed-Bold.ttf:serif,condensed,bold
        DejaVuSerifCondensed-Italic.ttf:serif,condensed,italic
        DejaVuSerifCondensed-BoldItalic.ttf:serif,condensed,bold,italic
    """)
    + _faces("fonts-liberation2", "truetype/liberation2", """
        LiberationSans-Regular.ttf:sans LiberationSans-Bold.ttf:sans,bold
        LiberationSans-Italic.ttf:sans,italic LiberationSans-BoldItalic.ttf:sans,bold,italic
        LiberationSerif-Regular.ttf:serif LiberationSerif-Bold.ttf:serif,bold
        LiberationSerif-Italic.ttf:serif,italic LiberationSerif-BoldItalic.ttf:serif,bold,italic
        LiberationMono-Regular.ttf:mono LiberationMono-Bold.ttf:mono,bold
        LiberationMono-Italic.ttf:mono,italic LiberationMono-BoldItalic.ttf:mono,bold,italic
    """)
    + _faces("fonts-freefont-ttf", "truetype/freefont", """
        FreeSans.ttf:sans FreeSansBold.ttf:sans,bold
        FreeSansOblique.ttf:sans,italic FreeSansBoldOblique.ttf:sans,bold,italic
        FreeSerif.ttf:serif FreeSerifBold.ttf:serif,bold
        FreeSerifItalic.ttf:serif,italic FreeSerifBoldItalic.ttf:serif,bold,italic
        FreeMono.ttf:mono FreeMonoBold.ttf:mono,bold
        FreeMonoOblique.ttf:mono,italic FreeMonoBoldOblique.ttf:mono,bold,italic
    """)
    + _faces("fonts-urw-base35", "opentype/urw-base35", """
        NimbusRoman-Regular.otf:serif NimbusRoman-Bold.otf:serif,bold
        NimbusRoman-Italic.otf:serif,italic NimbusRoman-BoldItalic.otf:serif,bold,italic
        NimbusSans-Regular.otf:sans NimbusSans-Bold.otf:sans,bold
        NimbusSans-Italic.otf:sans,italic NimbusSans-BoldItalic.otf:sans,bold,italic
        NimbusSansNarrow-Regular.otf:sans,condensed NimbusSansNarrow-Bold.otf:sans,condensed,bold
        NimbusSansNarrow-Oblique.otf:sans,condensed,italic
        NimbusSansNarrow-BoldOblique.otf:sans,condensed,bold,italic
        NimbusMonoPS-Regular.otf:mono NimbusMonoPS-Bold.otf:mono,bold
        NimbusMonoPS-Italic.otf:mono,italic NimbusMonoPS-BoldItalic.otf:mono,bold,italic
        C059-Roman.otf:serif C059-Bold.otf:serif,bold C059-Italic.otf:serif,italic C059-BdIta.otf:serif,bold,italic
        P052-Roman.otf:serif P052-Bold.otf:serif,bold P052-Italic.otf:serif,italic P052-BoldItalic.otf:serif,bold,italic
        URWBookman-Light.otf:serif,light URWBookman-Demi.otf:serif,bold
        URWBookman-LightItalic.otf:serif,light,italic URWBookman-DemiItalic.otf:serif,bold,italic
        URWGothic-Book.otf:sans URWGothic-Demi.otf:sans,bold
        URWGothic-BookOblique.otf:sans,italic URWGothic-DemiOblique.otf:sans,bold,italic
    """)
    + _faces("fonts-noto-core", "truetype/noto", """
        NotoSans-Regular.ttf:sans NotoSans-Bold.ttf:sans,bold
        NotoSans-Italic.ttf:sans,italic NotoSans-BoldItalic.ttf:sans,bold,italic
        NotoSerif-Regular.ttf:serif NotoSerif-Bold.ttf:serif,bold
        NotoSerif-Italic.ttf:serif,italic NotoSerif-BoldItalic.ttf:serif,bold,italic
        NotoSansDisplay-Regular.ttf:sans NotoSansDisplay-Bold.ttf:sans,bold
        NotoSerifDisplay-Regular.ttf:serif NotoSerifDisplay-Italic.ttf:serif,italic
    """)
)


def font_path(font: Font) -> Path:
    """The font's file, or MissingDependencyError naming the Debian package that ships it."""
    path = FONT_ROOT / font.file
    if not path.is_file():
        raise MissingDependencyError(
            f"{path}: font file not found; install it with `sudo apt-get install {font.package}`"
        )
    return path


@lru_cache(maxsize=2048)
def load_font(font: Font, size: int) -> ImageFont.FreeTypeFont:
    """The face at `size` pixels per em, with basic layout so each glyph is placed by its own advance."""
    return ImageFont.truetype(str(font_path(font)), size, layout_engine=ImageFont.Layout.BASIC)


def fonts_with(*tags: str, without: tuple[str, ...] = ()) -> tuple[Font, ...]:
    """Faces carrying every tag in `tags` and none in `without`."""
    return tuple(f for f in FONTS if f.tags.issuperset(tags) and not f.tags.intersection(without))
