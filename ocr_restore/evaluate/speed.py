"""How fast each stage runs: `ocr-restore bench-speed`.

The speed bars name two images: an A4 page of 10-pt text at 300 dpi with ten
occluders, and a text-line crop. `a4_page` and `text_line` draw them from fixed
seeds. `time_stages` gives the median milliseconds of the detector, of the
inpainter given the true mask (so that it fills the same holes whatever a
detector finds), and of the whole default pipeline, on each.
"""

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import Occlusion, occlude, render
from ..files import write_text

__all__ = ["a4_page", "text_line", "median_ms", "time_stages", "write_report"]

A4 = (3508, 2480)  # px at 300 dpi
PAGE_EM = 42  # 10 pt at 300 dpi
PAGE_OCCLUDERS = 10


def a4_page(occluders: int = PAGE_OCCLUDERS, seed: int = 0) -> Occlusion:
    """An A4 page at 300 dpi full of 10-pt lines, with `occluders` shapes over it: the first draws from
    `seed` on that give a page of 20 lines or more and that number of shapes."""
    for attempt in range(seed, seed + 1000):
        rng = np.random.default_rng(attempt)
        sample = render("docs", rng, size=PAGE_EM, canvas=A4)
        if sample.text.count("\n") < 20:
            continue
        occlusion = occlude(sample, rng, 0.05)
        if len(occlusion.shapes) == occluders:
            return occlusion
    raise ValueError(f"no page with {occluders} occluders in 1000 draws from seed {seed}")


def text_line(seed: int = 0) -> Occlusion:
    """A receipt line (one line of text, about 24 px to the em) with the shapes 20% coverage draws."""
    for attempt in range(seed, seed + 1000):
        rng = np.random.default_rng(attempt)
        sample = render("receipts", rng)
        if "\n" not in sample.text.strip():
            return occlude(sample, rng, 0.2)
    raise ValueError(f"no single line in 1000 draws from seed {seed}")


def median_ms(run, repeats: int) -> float:
    """Median milliseconds of `repeats` calls of `run()`, after one call that warms caches and allocators."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def time_stages(pipeline, repeats: int = 5) -> pd.DataFrame:
    """Median ms of `pipeline`'s detector, its inpainter on the true mask, and the whole pipeline, per image."""
    rows = []
    for name, occlusion in (("A4 page, 300 dpi, 10 occluders", a4_page()), ("text line", text_line())):
        image, mask = occlusion.image, occlusion.mask
        stages = {  # each as the pipeline calls it, measuring the em itself
            f"detector ({pipeline.detector.name})": lambda: pipeline.detector(image),
            f"inpainter ({pipeline.inpainter.name}), true mask": lambda: pipeline.inpainter(image, mask),
            "whole pipeline": lambda: pipeline(image),
        }
        for stage, run in stages.items():
            rows.append({"image": name, "height": image.shape[0], "width": image.shape[1], "stage": stage,
                         "ms": median_ms(run, repeats)})
    return pd.DataFrame(rows)


def write_report(report_dir: Path, pipeline, repeats: int = 5) -> str:
    """Time the stages; write speed.csv and speed.md into `report_dir`; return the markdown."""
    table = time_stages(pipeline, repeats)
    report_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(report_dir / "speed.csv", index=False)
    markdown = (f"# Speed (median of {repeats} runs after a warm-up, ms)\n\n"
                + table.to_markdown(index=False, floatfmt=".0f") + "\n")
    write_text(report_dir / "speed.md", markdown)
    return markdown
