"""How well a detector finds occluders: `ocr-restore bench-detector`.

`evaluate_detector` scores any Detector on fixed-seed full-size synthetic images
(rendered and occluded, not crops): IoU, recall and precision on occluder pixels
near text, per text kind, shape kind, style and colour class, change band and part
of the truth, false positives on the clean images, and time;
`evaluate_on_set` scores it on an occluded set that `ocr-restore synth` wrote (real
images among them), `false_positives_on_real` counts what it flags on clean real
images, `time_page` times an A4 page, and `write_report` puts them in detector.csv,
sets.csv, real.csv and detector.md.
"""

import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..data import KINDS, Occlusion, occlude, render
from ..data.render import otsu_ink
from ..detect import Detector
from ..errors import InputFileError
from ..files import find_images, read_image, write_text
from .speed import a4_page, median_ms

__all__ = ["evaluate_detector", "evaluate_on_set", "false_positives_on_real", "time_page", "write_report"]

# grey levels (largest channel) an occluder changed a pixel by: the evaluation's recall per band of them
CHANGE_BANDS = ((1, 8), (9, 16), (17, 32), (33, 64), (65, 255))
# the evaluation's recall per part of the truth: what erasures (paper-coloured and white shapes) changed, the
# faint edge band (the blur's spill, EDGE_BAND px deep, changed by <= EDGE_CHANGE levels), and the rest
ERASURE_COLOURS = ("paper", "white")
EDGE_BAND, EDGE_CHANGE = 2, 32
# on an occluded set, a pixel an occluder changed by this many grey levels or fewer counts neither way (it is no
# harm to miss nor to flag), and recall is told apart on those it changed by more than STRONG_CHANGE (issue #22)
FAINT_CHANGE, STRONG_CHANGE = 8, 32


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _change(image: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """int16 HxW: how many grey levels (largest channel) each pixel of `image` differs from `clean` by."""
    return np.abs(image.astype(np.int16) - clean).max(-1)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)


def _nearest_shape(shape_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, the id of the nearest shape pixel and the distance to it."""
    if not shape_ids.any():
        return np.zeros_like(shape_ids), np.full(shape_ids.shape, np.inf, np.float32)
    distance, label = cv2.distanceTransformWithLabels(
        (shape_ids == 0).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    # labels number the shape pixels 1.. in row-major order
    return np.concatenate([[0], shape_ids[shape_ids != 0]])[label], distance


def _changed_by(occlusion: Occlusion, colours: tuple[str, ...]) -> np.ndarray:
    """bool HxW: the pixels that shapes of these colours changed."""
    ids = [k for k, shape in enumerate(occlusion.shapes, 1) if shape.colour in colours]
    return np.isin(occlusion.shape_ids, ids)


def _parts(occlusion: Occlusion, truth: np.ndarray, change: np.ndarray) -> dict[str, np.ndarray]:
    """`truth` (bool HxW) split into erasure, edge and interior pixels (see `evaluate_detector`)."""
    erasure = truth & _changed_by(occlusion, ERASURE_COLOURS)
    inner = cv2.erode(occlusion.mask.view(np.uint8), np.ones((2 * EDGE_BAND + 1,) * 2, np.uint8)).view(bool)
    edge = truth & ~erasure & ~inner & (change <= EDGE_CHANGE)
    return {"erasure": erasure, "edge": edge, "interior": truth & ~erasure & ~edge}


def evaluate_detector(
    detector: Detector,
    kinds: tuple[str, ...] = KINDS,
    n: int = 100,
    seed: int = 0,
    coverage: tuple[float, float] = (0.01, 0.4),
) -> pd.DataFrame:
    """Score `detector` on `n` fixed-seed rendered and occluded images per kind (the quality bar's metrics).

    Pixels count where they lie near text: on the characters' ink dilated by
    half an em. The truth is the occlusion mask (pixels a shape changed); the
    unchanged area under a paper-coloured shape is neither right nor wrong, as
    only its effect on the text can be seen. A false positive is charged to the
    shape nearest to it (within half an em) for the per-shape rows.

    Returns one row per (kind, group, value), with kind "all" summing the kinds:
    group "all" (columns iou, recall, precision, fp_clean = pixels flagged on the
    clean images per ink pixel, paper_recall and paper_precision of the
    paper-coloured mask, ms per image), groups "shape", "style" and "colour"
    (iou, recall, precision, pixels), group "change": recall on the pixels an
    occluder changed by a band of grey levels (CHANGE_BANDS; the blur and JPEG
    spill around a shape is faint), where a false positive has no band, and group
    "part": recall on the truth split three ways, "erasure" (paper-coloured and
    white shapes, which change a page by the ink they take), "edge" (the faint
    spill in the truth's edge band) and "interior" (the rest).
    """
    counts: dict[tuple[str, str, str], np.ndarray] = {}  # tp, fp, fn
    # per kind: flagged on clean, ink, paper tp, paper truth, paper hits, paper flagged, images, seconds
    extra: dict[str, np.ndarray] = {}

    def add(key, values):
        counts[key] = counts.get(key, 0) + np.asarray(values, np.float64)

    for k, kind in enumerate(kinds):
        extra[kind] = np.zeros(8)
        for i in tqdm(range(n), desc=f"evaluate {detector.name} on {kind}", leave=False):
            rng = np.random.default_rng([seed, k, i])
            sample = render(kind, rng)
            occlusion = occlude(sample, rng, rng.uniform(*coverage))
            start = time.perf_counter()
            found = detector(occlusion.image)
            seconds = time.perf_counter() - start
            flagged_clean = detector(sample.image).mask

            half_em = max(1, round(sample.text_height / 2))
            ink = sample.char_ink > 0
            near = cv2.dilate(ink.view(np.uint8), _disc(half_em)).view(bool)
            counted = near & ~(occlusion.paper_area & ~occlusion.mask)
            truth, predicted = occlusion.mask & counted, found.mask & counted
            false_positive = predicted & ~truth
            add((kind, "all", "all"), [(predicted & truth).sum(), false_positive.sum(), (truth & ~predicted).sum()])
            change = _change(occlusion.image, sample.image)
            bands = {f"{low:03d}-{high:03d}": truth & (change >= low) & (change <= high) for low, high in CHANGE_BANDS}
            # a false positive has no band or part (it changed no pixel): its count, and with it IoU and precision, is NaN
            for group, split in (("change", bands), ("part", _parts(occlusion, truth, change))):
                for value, where in split.items():
                    add((kind, group, value), [(predicted & where).sum(), np.nan, (where & ~predicted).sum()])

            nearest, distance = _nearest_shape(occlusion.shape_ids)
            per_shape = lambda ids, where: np.bincount(ids[where], minlength=len(occlusion.shapes) + 1)
            hits = per_shape(occlusion.shape_ids, predicted & truth)
            charged = per_shape(nearest, false_positive & (distance <= half_em))
            misses = per_shape(occlusion.shape_ids, truth & ~predicted)
            for shape_id, shape in enumerate(occlusion.shapes, 1):
                tally = [hits[shape_id], charged[shape_id], misses[shape_id]]
                for group in ("shape", "style", "colour"):
                    add((kind, group, getattr(shape, "kind" if group == "shape" else group)), tally)

            paper_truth = _changed_by(occlusion, ("paper",)) & truth
            paper_found = found.paper_mask & near
            extra[kind] += [
                flagged_clean.sum(), ink.sum(),
                (found.paper_mask & paper_truth).sum(), paper_truth.sum(),
                (paper_found & occlusion.paper_area).sum(), paper_found.sum(),
                1, seconds,
            ]

    for (kind, group, value), tally in list(counts.items()):
        add(("all", group, value), tally)
    extra["all"] = sum(extra.values())
    rows = []
    for (kind, group, value), (tp, fp, fn) in sorted(counts.items()):
        row = {"kind": kind, "group": group, "value": value, "pixels": int(tp + fn),
               "iou": _ratio(tp, tp + fp + fn), "recall": _ratio(tp, tp + fn), "precision": _ratio(tp, tp + fp)}
        if group == "all":
            flagged, ink, paper_tp, paper_truth, paper_hits, paper_flagged, images, seconds = extra[kind]
            row.update(fp_clean=_ratio(flagged, ink), paper_recall=_ratio(paper_tp, paper_truth),
                       paper_precision=_ratio(paper_hits, paper_flagged), images=int(images),
                       ms=1000 * seconds / images)
        rows.append(row)
    order = {"all": 0, "shape": 1, "style": 2, "colour": 3, "change": 4, "part": 5}
    table = pd.DataFrame(rows).sort_values(["kind", "group", "value"], key=lambda c: c.map(order) if c.name == "group" else c)
    return table.reset_index(drop=True)


def evaluate_on_set(detector: Detector, folder: str | Path) -> dict[str, float]:
    """`detector` on an occluded set as `ocr-restore synth` writes it: each image of `folder`/occluded against
    the one of the same name in `folder`/clean. The truth is what the occluders changed by more than
    FAINT_CHANGE grey levels (the largest channel's change), and fainter changes count neither way: IoU, recall
    (and recall on the pixels changed by more than STRONG_CHANGE) and precision, summed over the set; then what
    it flags on the clean images (`false_positives_on_real`)."""
    folder = Path(folder)
    occluded, clean = folder / "occluded", folder / "clean"
    if not occluded.is_dir() or not clean.is_dir():
        raise InputFileError(f"{folder}: not an occluded set (it needs occluded/ and clean/, as `ocr-restore synth` "
                             "writes them)")
    paths = find_images(occluded)
    if not paths:
        raise InputFileError(f"{occluded}: no images")
    hits = flagged = truth_pixels = strong_hits = strong_pixels = 0
    for path in tqdm(paths, desc=f"{detector.name} on {folder.name}", leave=False):
        original = clean / path.relative_to(occluded)
        if not original.is_file():
            raise InputFileError(f"{path}: no clean original at {original}")
        image, reference = read_image(path), read_image(original)
        if image.shape != reference.shape:
            raise InputFileError(f"{path}: {image.shape[1]}x{image.shape[0]}, but its clean original {original} is "
                                 f"{reference.shape[1]}x{reference.shape[0]}")
        change = _change(image, reference)
        truth, strong = change > FAINT_CHANGE, change > STRONG_CHANGE
        found = detector(image).mask & ((change == 0) | truth)
        hits += (found & truth).sum()
        flagged += found.sum()
        truth_pixels += truth.sum()
        strong_hits += (found & strong).sum()
        strong_pixels += strong.sum()
    on_clean = false_positives_on_real(detector, clean)
    return {"set": str(folder), "images": len(paths), "iou": _ratio(hits, flagged + truth_pixels - hits),
            "recall": _ratio(hits, truth_pixels), f"recall_over_{STRONG_CHANGE}": _ratio(strong_hits, strong_pixels),
            "precision": _ratio(hits, flagged), "fp_clean_per_ink": on_clean["fp_per_ink"],
            "clean_images_flagged": on_clean["images_flagged"]}


def false_positives_on_real(detector: Detector, folder: str | Path) -> dict[str, float]:
    """Pixels `detector` flags on a folder of clean real text images, per ink pixel (the minority side
    of an Otsu threshold of the grey levels), and the share of images with any pixel flagged."""
    flagged = ink = images_flagged = 0
    paths = find_images(folder)
    for path in tqdm(paths, desc=f"{detector.name} on {Path(folder).name}", leave=False):
        image = read_image(path)
        mask = detector(image).mask
        flagged += mask.sum()
        ink += otsu_ink(image).sum()
        images_flagged += bool(mask.any())
    return {"set": str(folder), "images": len(paths), "fp_per_ink": _ratio(flagged, ink),
            "images_flagged": _ratio(images_flagged, len(paths))}


def time_page(detector: Detector, repeats: int = 3) -> float:
    """Milliseconds (median of `repeats`) to run `detector` on the occluded A4 page of `speed.a4_page`."""
    image = a4_page().image
    return median_ms(lambda: detector(image), repeats)


def write_report(report_dir: Path, detector: Detector, n: int, seed: int, real_dirs: tuple[Path, ...] = (),
                 sets: tuple[Path, ...] = (), page_time: bool = True) -> str:
    """Run the detector benchmark: `n` renders per kind (none at 0), the occluded `sets` (`evaluate_on_set`), the
    clean `real_dirs` and, with `page_time`, the page's time; write detector.csv, sets.csv, real.csv and detector.md into `report_dir`;
    return the markdown."""
    report_dir.mkdir(parents=True, exist_ok=True)
    markdown = f"# Detector benchmark ({detector.name})\n"
    if n:
        table = evaluate_detector(detector, n=n, seed=seed)
        table.to_csv(report_dir / "detector.csv", index=False)
        overall = table[table["group"] == "all"].drop(columns=["group", "value"])
        by_kind = table[(table["kind"] == "all") & (table["group"] != "all")][["group", "value", "iou", "recall", "precision", "pixels"]]
        markdown += (f"\nRenders, {n} images per kind, seed {seed}:\n\n" + overall.to_markdown(index=False, floatfmt=".4f")
                     + "\n\nPer shape, style and colour (all kinds):\n\n" + by_kind.to_markdown(index=False, floatfmt=".4f"))
    if sets:
        occluded = pd.DataFrame([evaluate_on_set(detector, folder) for folder in sets])
        occluded.to_csv(report_dir / "sets.csv", index=False)
        markdown += (f"\n\nOccluded sets (truth: the pixels changed by more than {FAINT_CHANGE} grey levels; fainter "
                     "changes count neither way; fp_clean_per_ink: pixels flagged on the clean originals per ink "
                     "pixel):\n\n" + occluded.to_markdown(index=False, floatfmt=".4f"))
    if real_dirs:
        real = pd.DataFrame([false_positives_on_real(detector, folder) for folder in real_dirs])
        real.to_csv(report_dir / "real.csv", index=False)
        markdown += ("\n\nPixels flagged on clean real images, per ink pixel:\n\n"
                     + real.to_markdown(index=False, floatfmt=".4f"))
    if page_time:
        markdown += f"\n\nA4 page at 300 dpi: {time_page(detector):.0f} ms"
    write_text(report_dir / "detector.md", markdown + "\n")
    return markdown
