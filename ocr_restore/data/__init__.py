"""The synthetic data engine: clean text images, occluders, training crops and benchmark sets.

    >>> rng = np.random.default_rng(0)
    >>> sample = render("docs", rng)                 # image, text, char boxes, per-char ink
    >>> occlusion = occlude(sample, rng, 0.2)        # occluded image, exact mask, hidden chars
    >>> crops = SyntheticCrops(crop=(64, 128))       # endless training crops at TEXT_HEIGHT
    >>> write_synth_set("eval/docs", "docs", 200, seed=1)
"""

from .dataset import FolderCrops, SyntheticCrops, fixed_set
from .occlude import Occlusion, Shape, occlude, recoverable
from .render import KINDS, TextImage, render
from .synth import occlude_real_set, save_sample_grid, write_synth_set

__all__ = [
    "KINDS",
    "TextImage",
    "render",
    "Occlusion",
    "Shape",
    "occlude",
    "recoverable",
    "SyntheticCrops",
    "FolderCrops",
    "fixed_set",
    "write_synth_set",
    "occlude_real_set",
    "save_sample_grid",
]
