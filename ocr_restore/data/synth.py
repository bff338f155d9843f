"""Benchmark sets on disk: synthetic ones, occluded real ones, and the sample grid of the docs.

A set is a folder that `ocr-restore bench` and `batch` read directly:

    clean/NNNNN.png      clean/NNNNN.gt.txt      the text without occluders
    occluded/NNNNN.png   occluded/NNNNN.gt.txt   the input to restore
    mask/NNNNN.png                               255 = the hole: where occluded differs from clean, plus
                                                 the whole area of paper-coloured shapes (erasures)
    recoverable/NNNNN.png                        clean, less the characters wholly hidden (occlude.recoverable):
                                                 the floor of any restoration's CER; in a real set the
                                                 characters are the ink's connected components
    gt.tsv                                       name<TAB>text, line breaks as \\n
    meta.csv                                     per image: size, coverage, shapes, chars hidden

Sample i of a set depends only on (seed, i), so a smaller set is a prefix of a larger one.
"""

import csv
import io
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import InputFileError
from ..files import atomic_path, find_images, read_image, read_transcripts, write_image, write_mask, write_text
from ..textscale import CROP_EM_PER_HEIGHT, estimate_text_height
from .dataset import held_out
from .occlude import SHAPE_KINDS, Occlusion, occlude, recoverable
from .render import KINDS, TextImage, from_image, ink_components, render

__all__ = ["write_synth_set", "occlude_real_set", "save_sample_grid"]

_FOLDERS = ("clean", "occluded", "mask", "recoverable")
REAL_INK_SPREAD = 2  # px around a real image's Otsu ink that still belongs to the letter (its blurred edge)
_META_FIELDS = ["name", "kind", "width", "height", "text_height", "coverage", "mask_fraction",
                "shapes", "chars", "chars_hidden"]


def _prepare(out_dir: Path) -> None:
    """Make `out_dir` ready for a set; clear a previous set's files, refuse a folder of anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputFileError(f"{out_dir}: exists and is not a folder; choose another OUT_DIR")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        out_dir.mkdir(parents=True, exist_ok=True)
        return
    meta = out_dir / "meta.csv"
    header = meta.read_text(encoding="utf-8").splitlines()[:1] if meta.is_file() else []
    if header != [",".join(_META_FIELDS)]:
        raise InputFileError(
            f"{out_dir}: folder is not empty and is not a set written by ocr-restore synth; "
            "choose an empty or new OUT_DIR"
        )
    # only what the previous set wrote goes, so files a user added stay
    for row in csv.DictReader(io.StringIO(meta.read_text(encoding="utf-8"))):
        stem = Path(row["name"]).stem
        for folder in _FOLDERS:
            for suffix in (".png", ".gt.txt"):
                (out_dir / folder / f"{stem}{suffix}").unlink(missing_ok=True)


def _write_sample(out_dir: Path, name: str, clean: np.ndarray, occlusion: Occlusion, text: str,
                  ink: np.ndarray, spread: int) -> None:
    """The set's files for one image; ink and spread (px) are the characters' ink, as `recoverable` takes them."""
    write_image(out_dir / "clean" / f"{name}.png", clean)
    write_image(out_dir / "recoverable" / f"{name}.png", recoverable(clean, ink, occlusion, spread))
    write_image(out_dir / "occluded" / f"{name}.png", occlusion.image)
    # the hole to fill: the changed pixels alone would trace the glyphs a white-out erased
    write_mask(out_dir / "mask" / f"{name}.png", occlusion.mask | occlusion.paper_area)
    for folder in ("clean", "occluded"):
        write_text(out_dir / folder / f"{name}.gt.txt", text + "\n")


def _meta_row(name: str, sample: TextImage, occlusion: Occlusion) -> dict:
    return {
        "name": f"{name}.png",
        "kind": sample.kind,
        "width": sample.image.shape[1],
        "height": sample.image.shape[0],
        "text_height": round(sample.text_height, 2),
        "coverage": round(occlusion.coverage, 4),
        "mask_fraction": round(float(occlusion.mask.mean()), 4),
        "shapes": ";".join(f"{s.kind}/{s.style}/{s.colour}" for s in occlusion.shapes),
        "chars": len(sample.char_boxes),
        "chars_hidden": int(occlusion.wholly_hidden.sum()) if len(sample.char_boxes) else "",
    }


def _finish(out_dir: Path, texts: dict[str, str], rows: list[dict]) -> None:
    """gt.tsv and meta.csv, written last so a set with them is complete."""
    escaped = {name: text.replace("\n", "\\n") for name, text in texts.items()}
    write_text(out_dir / "gt.tsv", "".join(f"{name}.png\t{text}\n" for name, text in escaped.items()))
    table = io.StringIO()
    writer = csv.DictWriter(table, _META_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "meta.csv", table.getvalue())


def write_synth_set(out_dir: str | Path, kind: str, n: int, seed: int, coverage: tuple[float, float] = (0.05, 0.3),
                    shapes: tuple[str, ...] = SHAPE_KINDS) -> Path:
    """Render `n` clean images of `kind`, occlude each, and write the set to `out_dir`."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    out_dir = Path(out_dir)
    _prepare(out_dir)
    texts, rows = {}, []
    for i in tqdm(range(n), desc=f"synth {kind}", unit="img"):
        rng = np.random.default_rng([seed, i])
        name = f"{i:05d}"
        sample = render(kind, rng)
        occlusion = occlude(sample, rng, rng.uniform(*coverage), shapes)
        spread = int(np.ceil(2 * sample.degradation.blur)) + 1
        _write_sample(out_dir, name, sample.image, occlusion, sample.text, sample.char_ink, spread)
        texts[name] = sample.text
        rows.append(_meta_row(name, sample, occlusion))
    _finish(out_dir, texts, rows)
    return out_dir


def occlude_real_set(
    src_dir: str | Path, out_dir: str | Path, seed: int, coverage: tuple[float, float] = (0.05, 0.3), n: int | None = None,
    held_out_only: bool = False, truth: dict[str, str] | None = None,
) -> Path:
    """Occlude the images listed in `src_dir`/labels.tsv (the first `n` by name, default all) into `out_dir`.

    For evaluation only. Image i's occlusion depends only on (seed, i), so a
    smaller set is the start of a larger one. `truth` (transcripts by stem) stands
    in for a labels.tsv, e.g. for real pages nobody transcribed.
    held_out_only: only the images a training folder holds out (data.dataset.held_out).

    Shape sizes follow each image's estimated text height; where none is found,
    the image is taken for a word crop whose em is 0.8 of its height.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    labels = src_dir / "labels.tsv"
    paths = [p for p in find_images(src_dir) if not held_out_only or held_out(p)]
    if truth is None:
        if not labels.is_file():
            raise InputFileError(f"{labels}: not found; a real set needs labels.tsv (filename<TAB>text)")
        truth = read_transcripts(labels)
        missing = sorted(set(truth) - {p.stem for p in find_images(src_dir)})
        if missing:
            raise InputFileError(f"{src_dir / missing[0]}: listed in {labels} but not found ({len(missing)} missing)")
    files = {p.stem: p for p in paths if p.stem in truth}
    if not files:
        raise InputFileError(f"{src_dir}: no images to occlude" + (" among those held out of training" if held_out_only else ""))
    _prepare(out_dir)
    texts, rows = {}, []
    chosen = sorted(files.items())[:n]
    for i, (stem, path) in enumerate(tqdm(chosen, desc=f"occlude {src_dir.name}", unit="img")):
        rng = np.random.default_rng([seed, i])
        image = read_image(path)
        em = estimate_text_height(image) or CROP_EM_PER_HEIGHT * image.shape[0]  # the benchmark's sets are fixed: no guess_em
        sample = from_image(image, em, truth[stem])
        occlusion = occlude(sample, rng, rng.uniform(*coverage))
        _write_sample(out_dir, stem, image, occlusion, truth[stem], ink_components(image), REAL_INK_SPREAD)
        texts[stem] = truth[stem]
        rows.append(_meta_row(stem, sample, occlusion))
    _finish(out_dir, texts, rows)
    return out_dir


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(tile, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1, cv2.LINE_AA)
    return tile


def save_sample_grid(path: str | Path, seed: int = 0, per_kind: int = 3, width: int = 1200) -> Path:
    """A PNG of samples of each kind: clean, occluded, and the mask in red over the occluded image."""
    rows = []
    for k, kind in enumerate(KINDS):
        for i in range(per_kind):
            rng = np.random.default_rng([seed, k, i])
            sample = render(kind, rng)
            occlusion = occlude(sample, rng, rng.uniform(0.05, 0.3))
            overlay = occlusion.image.copy()
            overlay[occlusion.mask] = (overlay[occlusion.mask] * 0.4 + np.array([255, 0, 0]) * 0.6).astype(np.uint8)
            panels = [sample.image, occlusion.image, overlay]
            # scale each row to fit three panels side by side
            cell = (width - 40) // 3
            scale = min(cell / sample.image.shape[1], 200 / sample.image.shape[0])
            size = (max(1, int(sample.image.shape[1] * scale)), max(1, int(sample.image.shape[0] * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            row = np.full((size[1] + 30, width, 3), 255, np.uint8)
            for j, panel in enumerate(panels):
                x = 10 + j * (cell + 10)
                row[30:, x: x + size[0]] = cv2.resize(panel, size, interpolation=interp)
            title = f"{kind}: em {sample.text_height:.0f} px, coverage {occlusion.coverage:.0%}, " + \
                ", ".join(sorted({s.kind for s in occlusion.shapes}))
            rows.append(_label(row, title))
    header = _label(np.full((30, width, 3), 255, np.uint8), "clean | occluded | mask (red)")
    grid = np.vstack([header] + [np.vstack([r, np.full((8, width, 3), 200, np.uint8)]) for r in rows])
    path = Path(path)
    with atomic_path(path) as tmp:  # a 256-colour palette keeps the noisy samples' PNG small
        Image.fromarray(grid).quantize(256, method=Image.Quantize.MEDIANCUT).save(tmp, format="PNG", optimize=True)
    return path
