"""Accuracy benchmark: OCR on the occluded input, our restoration, the OpenCV baselines and the clean image.

A set made by `ocr-restore synth` also has its recoverable images (the clean ones less
the characters the occluders hid wholly, `data.occlude.recoverable`): their CER is the
floor a restoration reaches without writing in letters of which nothing is left.

Every variant uses the same mask (given with --masks, or found by the
detector), so the comparison isolates the inpainter. Scores are micro-averaged
over the set: total edits over total reference characters (or words).
"""

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from ..batch import map_in_workers
from ..errors import InputFileError, OcrError
from ..files import IMAGE_SUFFIXES, find_images, read_image, read_mask, read_sidecar, read_transcripts, write_image, write_mask, write_text
from ..inpaint import build_inpainter
from ..metrics import Score, score
from ..ocr import recognise, recognise_all, tesseract_version
from ..pipeline import Pipeline

__all__ = ["VARIANTS", "run_bench", "summarise", "clean_readings"]

REFERENCE_TIMEOUT = 900  # s: a whole page read once to make a reference may take long on a busy machine
# "restored" is ours; "confident" its reading merged word by word with the occluded one's, as the pipeline reads;
# "recoverable" and "clean" are read from folders beside the set
VARIANTS = ("occluded", "restored", "confident", "telea", "ns", "recoverable", "clean")


@dataclass(frozen=True)
class _Task:
    name: str  # relative path without suffix
    image: Path
    mask: Path | None
    references: dict[str, Path]  # "recoverable" and "clean", where given -> the image
    transcript: str
    report_dir: Path


_state: dict = {}


def _init(options: dict) -> None:
    _state.update(options, pipeline=Pipeline(**options["pipeline"]),
                  baselines={name: build_inpainter(name) for name in ("telea", "ns")})


def _run(task: _Task) -> dict:
    """OCR every variant of one image; returns its texts, scores and timings."""
    pipeline = _state["pipeline"]
    image = read_image(task.image)
    given = read_mask(task.mask, image.shape[:2]) if task.mask else None
    restoration = pipeline.restore(image, given)
    mask = restoration.mask
    result = pipeline.read(image, restoration, task.transcript, reading="confident")
    write_image(task.report_dir / "restored" / f"{task.name}.png", restoration.restored)
    write_mask(task.report_dir / "mask" / f"{task.name}.png", mask)
    row = {
        "name": task.name,
        "detector": restoration.detector,
        "inpainter": pipeline.inpainter.name,
        "occluded_fraction": float(mask.mean()),
        **{f"{stage}_s": value for stage, value in result.seconds.items()},
        "words_from_input": result.words_from_input,
    }
    # the baselines and the reference images, each read as Tesseract alone reads it
    others = {name: inpaint(image, mask) for name, inpaint in _state["baselines"].items()}
    others.update({variant: read_image(path) for variant, path in task.references.items()})
    texts = {"occluded": result.input_text, "restored": result.restored_text, "confident": result.text}
    texts.update(zip(others, (r.text for r in recognise_all(list(others.values()), pipeline.lang, pipeline.psm,
                                                            processes=torch.get_num_threads()))))
    for variant, text in texts.items():
        s = score(task.transcript, text, _state["ignore_case"], _state["alnum_only"])
        row.update({f"text_{variant}": text, f"cer_{variant}": s.cer, f"wer_{variant}": s.wer})
        row.update({f"{field}_{variant}": value for field, value in vars(s).items()})
    row["reference"] = task.transcript
    return row


def summarise(report: pd.DataFrame) -> pd.DataFrame:
    """Micro-averaged CER, WER and word accuracy per variant, with the recovered fraction when clean images are there."""
    rows = []
    for variant in VARIANTS:
        if f"chars_{variant}" not in report:
            continue
        total = Score(*(int(report[f"{field}_{variant}"].sum()) for field in vars(Score())))
        rows.append({"variant": variant, "cer": total.cer, "wer": total.wer, "word_accuracy": total.word_accuracy})
    summary = pd.DataFrame(rows).set_index("variant")
    if "clean" in summary.index:
        gap = summary.at["occluded", "cer"] - summary.at["clean", "cer"]
        summary["recovered"] = (summary.at["occluded", "cer"] - summary["cer"]) / gap if gap > 0 else np.nan
    return summary


def _example_grid(report: pd.DataFrame, tasks: dict[str, _Task], report_dir: Path, count: int, seed: int) -> Path:
    """A PNG of `count` examples: occluded | mask | restored | clean, each with its OCR text underneath."""
    picks = report.sample(min(count, len(report)), random_state=seed).sort_values("name")
    columns = [("occluded", "occluded"), ("mask", None), ("restored", "restored"), ("clean", "clean")]
    fig = Figure(figsize=(16, 2.3 * len(picks)))  # no pyplot: no GUI backend to choose
    axes = fig.subplots(len(picks), 4, squeeze=False)
    for axrow, (_, row) in zip(axes, picks.iterrows()):
        task = tasks[row["name"]]
        images = {
            "occluded": read_image(task.image),
            "mask": read_image(report_dir / "mask" / f"{task.name}.png"),
            "restored": read_image(report_dir / "restored" / f"{task.name}.png"),
            "clean": read_image(task.references["clean"]) if "clean" in task.references else None,
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


def _markdown(summary: pd.DataFrame, settings: dict) -> str:
    lines = ["# ocr-restore benchmark", ""] + [f"- {key}: {value}" for key, value in settings.items()]
    lines += ["", summary.to_markdown(floatfmt=".4f"), ""]
    if "recovered" in summary:
        lines += ["recovered = (CER_occluded - CER_x) / (CER_occluded - CER_clean): "
                  "1 means all the accuracy the occluders took is back.", ""]
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
) -> pd.DataFrame:
    """Benchmark every image under `in_dir` that has a transcript; write report.csv, summary.csv, report.md, examples.png."""
    in_dir, report_dir = Path(in_dir), Path(report_dir)
    truth = read_transcripts(gt) if gt else {}
    tasks = {}
    for path in find_images(in_dir, exclude=report_dir):
        relative = path.relative_to(in_dir).with_suffix("")
        transcript = truth.get(path.stem, truth.get(str(relative)))
        if transcript is None:
            transcript = read_sidecar(path)
        if transcript is None:
            continue
        mask = _find_beside(masks, relative) if masks else None
        references = {variant: _find_beside(folder, relative)
                      for variant, folder in (("recoverable", recoverable), ("clean", clean)) if folder}
        tasks[str(relative)] = _Task(str(relative), path, mask, references, transcript, report_dir)
    if not tasks:
        raise InputFileError(f"{in_dir}: no image has a transcript (give --gt TSV or put <stem>.gt.txt beside each image)")

    options = {"pipeline": pipeline_options or {}, "ignore_case": ignore_case, "alnum_only": alnum_only}
    rows = list(tqdm(map_in_workers(_run, list(tasks.values()), workers, _init, options), total=len(tasks), desc="bench", unit="img"))
    report = pd.DataFrame(rows).sort_values("name").reset_index(drop=True)
    summary = summarise(report)
    report_dir.mkdir(parents=True, exist_ok=True)
    report.to_csv(report_dir / "report.csv", index=False)
    summary.to_csv(report_dir / "summary.csv")
    settings = {
        "images": len(report),
        "masks": f"given ({masks})" if masks else f"detected ({report.at[0, 'detector']})",
        "restored": f"ours ({report.at[0, 'inpainter']})",
        "confident": "ours, merged word by word with the occluded input's reading where Tesseract is clearly more confident of that",
        "baselines": "OpenCV Telea and Navier-Stokes, radius 5, same masks",
        **({"recoverable": f"the clean images less the characters wholly hidden ({recoverable}): "
                           "the floor of a restoration that writes in no letter it cannot see"} if recoverable else {}),
        "ocr": f"tesseract {tesseract_version()}",
        "scoring": "micro-averaged edit distance, whitespace normalised"
        + (", case-insensitive" if ignore_case else "")
        + (", letters and digits only" if alnum_only else ""),
    }
    write_text(report_dir / "report.md", _markdown(summary, settings))
    _example_grid(report, tasks, report_dir, examples, seed)
    return summary


def _find_beside(folder: Path, relative: Path) -> Path:
    """`folder/relative.<any image suffix>`, preferring PNG; raises naming what was looked for."""
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / relative.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise InputFileError(f"{folder / relative}.png: not found (every benchmark image needs one here)")


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
