"""Accuracy benchmark: OCR on the occluded input, our restoration, the OpenCV baselines and the clean image.

Each image is restored once and read by every OCR engine asked for (`--ocr tesseract,rapidocr`), so the
engines are compared on the same restorations. A document (PDF, multi-page TIFF) is benchmarked page by
page: its pages' transcripts, masks and references are named by the page, as `batch` names its outputs
(scan.p0001.gt.txt, MASKS/scan.p0001.png), and a reference may also be the same document, clean.

A set made by `ocr-restore synth` also has its recoverable images (the clean ones less
the characters the occluders hid wholly, `data.occlude.recoverable`): their CER is the
floor a restoration reaches without writing in letters of which nothing is left.

Every variant uses the same mask (given with --masks, or found by the
detector), so the comparison isolates the inpainter. Scores are micro-averaged
over the set: total edits over total reference characters (or words).
"""

import sys
import textwrap
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from ..batch import map_in_workers
from ..errors import InputFileError, OcrError, OcrRestoreError
from ..choices import DPI
from ..files import (IMAGE_SUFFIXES, find_images, page_stem, pages, read_image, read_mask, read_page, read_sidecar,
                     read_transcripts, write_image, write_mask, write_text)
from ..inpaint import build_inpainter
from ..metrics import Score, matched_words, score
from ..ocr import build_engine, recognise
from ..pipeline import Pipeline

__all__ = ["VARIANTS", "HIDDEN_BANDS", "run_bench", "summarise", "trust", "clean_readings"]

# the default reading's words by the share of their box under the mask (none, up to half, more): how far a word's
# `hidden` tells a user to trust it
HIDDEN_BANDS = ("visible", "partly_hidden", "mostly_hidden")
LANGUAGE_ROW = "source_language"  # trust.csv's row of the words the language prior chose, whatever their band
REFERENCE_TIMEOUT = 900  # s: a whole page read once to make a reference may take long on a busy machine
# "restored" is ours; "confident" its reading merged word by word with the occluded one's; "language" that with the
# language prior, as the pipeline reads by default; "recoverable" and "clean" are read from folders beside the set
VARIANTS = ("occluded", "restored", "confident", "language", "telea", "ns", "recoverable", "clean")


@dataclass(frozen=True)
class _Source:
    """An image to read: a file, or page `page` (from 0) of a document."""

    path: Path
    page: int | None = None

    def read(self, dpi: int) -> np.ndarray:
        return read_image(self.path) if self.page is None else read_page(self.path, self.page, dpi)


@dataclass(frozen=True)
class _Task:
    name: str  # relative path without suffix; a document's page's is its output stem (scan.p0001)
    image: _Source
    mask: Path | None
    references: dict[str, _Source]  # "recoverable" and "clean", where given -> the image
    transcript: str
    report_dir: Path


_state: dict = {}


def _init(options: dict) -> None:
    pipeline = Pipeline(**{**options["pipeline"], "ocr": options["engines"][0]})
    others = [build_engine(name, options["pipeline"].get("lang", "eng"), options["pipeline"].get("psm"),
                           torch.get_num_threads()) for name in options["engines"][1:]]
    _state.update(options, pipeline=pipeline, ocr=[pipeline.ocr, *others],
                  baselines={name: build_inpainter(name) for name in ("telea", "ns")})


def _run(task: _Task) -> list[dict]:
    """`_rows(task)`, or where the image fails (Tesseract crashed or hung on it, it cannot be read) one row of its
    name and `error`, so that the benchmark goes on."""
    try:
        return _rows(task)
    except OcrRestoreError as e:
        message = str(e)
    except Exception as e:  # a bug on one image must not cost the user the rest of the benchmark
        message = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    source = task.image
    where = str(source.path) if source.page is None else f"{source.path} page {source.page + 1}"
    return [{"name": task.name, "error": message if message.startswith(str(source.path)) else f"{where}: {message}"}]


def _rows(task: _Task) -> list[dict]:
    """Restore one image and OCR every variant of it with every engine; returns a row per engine of its texts,
    scores and timings."""
    pipeline, dpi = _state["pipeline"], _state["dpi"]
    image = task.image.read(dpi)
    given = read_mask(task.mask, image.shape[:2]) if task.mask else None
    restoration = pipeline.restore(image, given)
    mask = restoration.mask
    write_image(task.report_dir / "restored" / f"{task.name}.png", restoration.restored)
    write_mask(task.report_dir / "mask" / f"{task.name}.png", mask)
    others = {name: inpaint(image, mask) for name, inpaint in _state["baselines"].items()}
    others.update({variant: source.read(dpi) for variant, source in task.references.items()})
    rows = []
    for engine in _state["ocr"]:
        result = pipeline.read(image, restoration, task.transcript, reading="confident", ocr=engine)
        row = {
            "name": task.name,
            "ocr": engine.name,
            "detector": restoration.detector,
            "inpainter": pipeline.inpainter.name,
            "occluded_fraction": float(mask.mean()),
            **{f"{stage}_s": value for stage, value in result.seconds.items()},
            "words_from_input": result.words_from_input,
            "ocr_stage": result.stages["ocr"],
        }
        # the baselines and the reference images, each read as the engine alone reads it
        texts = {"occluded": result.input_text, "restored": result.restored_text, "confident": result.pixel_text}
        if pipeline.language_prior is not None:
            texts["language"] = result.text
        texts.update(zip(others, (r.text for r in engine.read_all(list(others.values()), torch.get_num_threads()))))
        for variant, text in texts.items():
            s = score(task.transcript, text, _state["ignore_case"], _state["alnum_only"])
            row.update({f"text_{variant}": text, f"cer_{variant}": s.cer, f"wer_{variant}": s.wer})
            row.update({f"{field}_{variant}": value for field, value in vars(s).items()})
        row["reference"] = task.transcript
        row.update(_words_by_hidden(result.words, task.transcript))
        rows.append(row)
    return rows


def _words_by_hidden(words, transcript: str) -> dict[str, int]:
    """How many of the default reading's words fall in each of HIDDEN_BANDS, and in LANGUAGE_ROW (chosen by the
    language prior), and how many of those the reference does not match (`metrics.matched_words`; a word of
    punctuation only, scored away, counts in none)."""
    matched = matched_words(transcript, [w.text for w in words], _state["ignore_case"], _state["alnum_only"])
    band = lambda hidden: HIDDEN_BANDS[0 if hidden == 0 else 1 if hidden <= 0.5 else 2]
    counts = {f"{kind}_{name}": 0 for name in (*HIDDEN_BANDS, LANGUAGE_ROW) for kind in ("words", "wrong")}
    for word, match in zip(words, matched):
        if match is not None:
            for name in (band(word.hidden),) + ((LANGUAGE_ROW,) if word.source == "language" else ()):
                counts[f"words_{name}"] += 1
                counts[f"wrong_{name}"] += not match
    return counts


def trust(report: pd.DataFrame) -> pd.DataFrame:
    """Per OCR engine and band of HIDDEN_BANDS, and for the words the language prior chose (LANGUAGE_ROW): the
    default reading's words and the share of them that are wrong."""
    rows = []
    for engine, readings in report.groupby("ocr", sort=False):
        for band in (*HIDDEN_BANDS, LANGUAGE_ROW):
            words, wrong = int(readings[f"words_{band}"].sum()), int(readings[f"wrong_{band}"].sum())
            rows.append({"ocr": engine, "hidden": band, "words": words, "wrong": wrong / words if words else np.nan})
    return pd.DataFrame(rows).set_index(["ocr", "hidden"])


def summarise(report: pd.DataFrame) -> pd.DataFrame:
    """Micro-averaged CER, WER and word accuracy per OCR engine and variant, with the recovered fraction when
    clean images are there; indexed by (ocr, variant)."""
    rows = []
    for engine, readings in report.groupby("ocr", sort=False):
        summary = []
        for variant in VARIANTS:
            if f"chars_{variant}" not in readings:
                continue
            total = Score(*(int(readings[f"{field}_{variant}"].sum()) for field in vars(Score())))
            summary.append({"ocr": engine, "variant": variant, "cer": total.cer, "wer": total.wer,
                            "word_accuracy": total.word_accuracy})
        summary = pd.DataFrame(summary).set_index("variant")
        if "clean" in summary.index:
            gap = summary.at["occluded", "cer"] - summary.at["clean", "cer"]
            summary["recovered"] = (summary.at["occluded", "cer"] - summary["cer"]) / gap if gap > 0 else np.nan
        rows.append(summary.reset_index())
    return pd.concat(rows).set_index(["ocr", "variant"])


def _example_grid(report: pd.DataFrame, tasks: dict[str, _Task], report_dir: Path, count: int, seed: int,
                  dpi: int) -> Path:
    """A PNG of `count` examples: occluded | mask | restored | clean, each with its first OCR engine's text underneath."""
    report = report[report["ocr"] == report.at[0, "ocr"]]
    picks = report.sample(min(count, len(report)), random_state=seed).sort_values("name")
    columns = [("occluded", "occluded"), ("mask", None), ("restored", "restored"), ("clean", "clean")]
    fig = Figure(figsize=(16, 2.3 * len(picks)))  # no pyplot: no GUI backend to choose
    axes = fig.subplots(len(picks), 4, squeeze=False)
    for axrow, (_, row) in zip(axes, picks.iterrows()):
        task = tasks[row["name"]]
        images = {
            "occluded": task.image.read(dpi),
            "mask": read_image(report_dir / "mask" / f"{task.name}.png"),
            "restored": read_image(report_dir / "restored" / f"{task.name}.png"),
            "clean": task.references["clean"].read(dpi) if "clean" in task.references else None,
        }
        for ax, (title, variant) in zip(axrow, columns):
            ax.set_xticks([])
            ax.set_yticks([])
            if images[title] is not None:
                ax.imshow(images[title])
            caption = f"{row['name']}" if title == "mask" else (
                f"CER {row[f'cer_{variant}']:.2f}: " + str(row.get(f"text_{variant}", "")).replace("\n", " ")
                if variant and f"cer_{variant}" in row and not pd.isna(row[f"cer_{variant}"]) else ""
            )
            ax.set_xlabel("\n".join(textwrap.wrap(caption, 48)[:3]), fontsize=8)
            if axrow is axes[0]:
                ax.set_title(title)
    fig.tight_layout()
    path = report_dir / "examples.png"
    fig.savefig(path, dpi=80)
    return path


def _markdown(summary: pd.DataFrame, settings: dict, by_hidden: pd.DataFrame) -> str:
    lines = ["# ocr-restore benchmark", ""] + [f"- {key}: {value}" for key, value in settings.items()]
    lines += ["", summary.reset_index().to_markdown(index=False, floatfmt=".4f"), ""]
    if "recovered" in summary:
        lines += ["recovered = (CER_occluded - CER_x) / (CER_occluded - CER_clean): "
                  "1 means all the accuracy the occluders took is back.", ""]
    lines += ["The default reading's words by `hidden`, the share of their box under the mask, and how many the "
              "reference does not match (trust.csv):", "", by_hidden.reset_index().to_markdown(index=False, floatfmt=".3f"), ""]
    return "\n".join(lines + ["![examples](examples.png)", ""])


def run_bench(
    in_dir: Path,
    report_dir: Path,
    gt: Path | None = None,
    masks: Path | None = None,
    clean: Path | None = None,
    recoverable: Path | None = None,
    workers: int = 1,
    ignore_case: bool = False,
    alnum_only: bool = False,
    pipeline_options: dict | None = None,
    examples: int = 8,
    seed: int = 0,
    engines: tuple[str, ...] = ("tesseract",),
    dpi: int = DPI,
    on_error=lambda message: tqdm.write(message, file=sys.stderr),
) -> pd.DataFrame:
    """Benchmark every image (and document page) under `in_dir` that has a transcript, reading it with each of
    `engines`; write report.csv (a row per image and engine), summary.csv, trust.csv (the default reading's words
    by hidden share, and how many are wrong), errors.csv (the images that failed, each named with its error, and
    scored in no variant), report.md, examples.png. `on_error` hears of each failure as it happens."""
    in_dir, report_dir = Path(in_dir), Path(report_dir)
    truth = read_transcripts(gt) if gt else {}
    tasks = {}
    for path in find_images(in_dir, exclude=report_dir, documents=True):
        relative = path.relative_to(in_dir)
        for page in pages(path):
            name = relative.with_name(page_stem(relative.stem, page))  # a page is named as batch names its outputs
            transcript = truth.get(name.name, truth.get(str(name)))
            if transcript is None:
                transcript = read_sidecar(path.with_name(name.name + path.suffix))
            if transcript is None:
                continue
            mask = _find_beside(masks, name) if masks else None
            references = {variant: _reference(folder, relative, page)
                          for variant, folder in (("recoverable", recoverable), ("clean", clean)) if folder}
            tasks[str(name)] = _Task(str(name), _Source(path, page), mask, references, transcript, report_dir)
    if not tasks:
        raise InputFileError(f"{in_dir}: no image has a transcript (give --gt TSV or put <stem>.gt.txt beside each "
                             "image, <stem>.p0001.gt.txt beside a document for its first page)")

    options = {"pipeline": pipeline_options or {}, "engines": tuple(engines), "dpi": dpi,
               "ignore_case": ignore_case, "alnum_only": alnum_only}
    results, failed = [], []
    for rows in tqdm(map_in_workers(_run, list(tasks.values()), workers, _init, options), total=len(tasks),
                     desc="bench", unit="img"):
        if "error" in rows[0]:
            failed += rows
            on_error(f"ocr-restore: {rows[0]['error'].splitlines()[0]} (not scored, see errors.csv)")
        else:
            results += rows
    failed = pd.DataFrame(failed, columns=["name", "error"]).sort_values("name")
    report_dir.mkdir(parents=True, exist_ok=True)
    failed.to_csv(report_dir / "errors.csv", index=False)
    if not results:
        raise OcrRestoreError(f"{in_dir}: no image could be benchmarked ({report_dir / 'errors.csv'} lists them); "
                              f"the first: {failed['error'].iloc[0].splitlines()[0]}")
    report = pd.DataFrame(results)
    rank = report["ocr"].map({name: i for i, name in enumerate(engines)})
    report = report.assign(rank=rank).sort_values(["name", "rank"]).drop(columns="rank").reset_index(drop=True)
    summary = summarise(report)
    report.to_csv(report_dir / "report.csv", index=False)
    summary.to_csv(report_dir / "summary.csv")
    by_hidden = trust(report)
    by_hidden.to_csv(report_dir / "trust.csv")
    settings = {
        "images": report["name"].nunique(),
        **({"failed": f"{len(failed)} images, scored in no variant (errors.csv)"} if len(failed) else {}),
        "masks": f"given ({masks})" if masks else f"detected ({report.at[0, 'detector']})",
        "restored": f"ours ({report.at[0, 'inpainter']})",
        "confident": "ours, merged word by word with the occluded input's reading where the engine is clearly more confident of that",
        "language": "confident, with the language prior (the default reading)"
                    if "cer_language" in report else "not read: the language prior is off",
        "baselines": "OpenCV Telea and Navier-Stokes, radius 5, same masks",
        **({"recoverable": f"the clean images less the characters wholly hidden ({recoverable}): "
                           "the floor of a restoration that writes in no letter it cannot see"} if recoverable else {}),
        "ocr": "; ".join(report["ocr_stage"].unique()),
        "scoring": "micro-averaged edit distance, whitespace normalised"
        + (", case-insensitive" if ignore_case else "")
        + (", letters and digits only" if alnum_only else ""),
    }
    write_text(report_dir / "report.md", _markdown(summary, settings, by_hidden))
    _example_grid(report, tasks, report_dir, examples, seed, dpi)
    return summary


def _find_beside(folder: Path, relative: Path) -> Path:
    """`folder/relative.<any image suffix>`, preferring PNG; raises naming what was looked for."""
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / relative.with_name(relative.name + suffix)  # a stem may hold dots: scan.p0001
        if candidate.is_file():
            return candidate
    raise InputFileError(f"{folder / relative}.png: not found (every benchmark image needs one here)")


def _reference(folder: Path, relative: Path, page: int | None) -> _Source:
    """A reference image for `relative` (an input's path under the set) or its page: `folder/<stem>.<image>`, for
    a page `folder/<stem>.p0001.<image>` or else the same document in `folder`."""
    stem = relative.with_suffix("")
    if page is None:
        return _Source(_find_beside(folder, stem))
    document = folder / relative
    try:
        return _Source(_find_beside(folder, stem.with_name(page_stem(stem.name, page))))
    except InputFileError:
        if document.is_file():
            return _Source(document, page)
        raise


def clean_readings(folder: Path, held_out_only: bool = False, n: int | None = None) -> dict[str, str]:
    """Tesseract's reading of each clean image in `folder` (the first `n` by name), by stem: the reference of a
    set of real pages nobody transcribed, so that it measures what occluders cost against Tesseract without them."""
    from ..data.dataset import held_out

    paths = [p for p in find_images(folder) if not held_out_only or held_out(p)][:n]
    readings = {}
    for path in tqdm(paths, desc=f"read {folder.name} clean", unit="img"):
        try:
            readings[path.stem] = recognise(read_image(path), timeout=REFERENCE_TIMEOUT).text
        except OcrError as e:
            raise OcrError(f"{path}: {e}") from e
    return readings
