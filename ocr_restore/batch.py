"""Batch processing: the single-image pipeline over a folder tree, in parallel and resumable.

Each input's outputs are written atomically and its `.json` last, so the JSON
marks an input as done: a rerun skips it, and a killed run leaves no half file.
The input folder is only ever read.
"""

import json
import multiprocessing
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import torch
from tqdm import tqdm

from .errors import InputFileError, OcrRestoreError
from .files import atomic_path, find_images
from .pipeline import Pipeline

__all__ = ["map_in_workers", "run_batch", "BatchSummary"]

STAGES = ("read", "detect", "inpaint", "ocr")


def _row(file: str, status: str, error: str = "", record: dict | None = None) -> dict:
    record = record or {}
    row = {"file": file, "status": status, "error": error, "text": record.get("text", "")}
    row.update({f"{stage}_s": record.get("seconds", {}).get(stage) for stage in STAGES})
    row.update({k: record.get("stages", {}).get(k) for k in ("detector", "inpainter")})
    for when, rates in (record.get("accuracy") or {}).items():
        row.update({f"{name}_{when}": value for name, value in rates.items()})
    return row


def _done_record(json_path: Path) -> dict | None:
    try:
        return json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class _Task:
    path: Path
    relative: str  # path under IN_DIR, as written in results.csv
    base: Path  # output path without suffixes
    mask: Path | None


_pipeline: Pipeline | None = None


def _init_worker(options: dict) -> None:
    global _pipeline
    _pipeline = Pipeline(**options)


def map_in_workers(function, tasks: list, workers: int, initializer, options: dict) -> Iterator:
    """`function` over `tasks` in `workers` processes (in order of completion), each set up once by `initializer(options)`.

    One worker runs in this process; more share the cores between them, so torch
    threads are divided to keep the machine from oversubscribing.
    """
    if not tasks:
        return
    workers = min(workers, len(tasks))
    if workers <= 1:
        initializer(options)
        yield from map(function, tasks)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with multiprocessing.get_context("spawn").Pool(workers, _with_threads, (threads, initializer, options)) as pool:
        yield from pool.imap_unordered(function, tasks)


def _with_threads(threads: int, initializer, options: dict) -> None:
    torch.set_num_threads(threads)
    os.environ["OMP_THREAD_LIMIT"] = str(threads)  # Tesseract's OpenMP threads, as OCRmyPDF limits them
    initializer(options)


def _process(task: _Task) -> dict:
    """Run one input; any failure becomes an error row so the batch goes on."""
    try:
        if task.mask is not None and not task.mask.is_file():
            raise InputFileError(f"{task.path}: no mask at {task.mask}")
        result = _pipeline.run_file(task.path, task.mask)
        result.write(task.base)
        return _row(task.relative, "ok", record=result.to_json())
    except OcrRestoreError as e:
        return _row(task.relative, "error", str(e))
    except Exception as e:  # a bug on one file must not cost the user the rest of the batch
        return _row(task.relative, "error", f"{task.path}: {type(e).__name__}: {e}\n{traceback.format_exc()}")


@dataclass
class BatchSummary:
    done: int
    skipped: int
    failed: int
    results: Path


def run_batch(
    in_dir: Path,
    out_dir: Path,
    masks: Path | None = None,
    workers: int = 1,
    pipeline_options: dict | None = None,
    on_error=lambda message: tqdm.write(message, file=sys.stderr),
) -> BatchSummary:
    """Process every image under `in_dir` into `out_dir`, skipping inputs already done; write results.csv."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if out_dir.resolve() == in_dir.resolve():
        raise InputFileError(f"{out_dir}: the output folder must differ from the input folder")
    inputs = find_images(in_dir, exclude=out_dir)
    for stale in out_dir.rglob(".*.part*") if out_dir.is_dir() else ():  # temporaries of a run killed mid-write
        stale.unlink()
    if not inputs:
        raise InputFileError(f"{in_dir}: no images found (looked for PNG, JPEG, TIFF, BMP, WebP)")
    rows, tasks = {}, []
    for path in inputs:
        relative = path.relative_to(in_dir)
        base = out_dir / relative.with_suffix("")
        record = _done_record(base.with_name(base.name + ".json"))
        if record is not None:
            rows[str(relative)] = _row(str(relative), "ok", record=record)
            continue
        mask = masks / relative.with_suffix(".png") if masks else None
        tasks.append(_Task(path, str(relative), base, mask))

    failed = 0
    with tqdm(total=len(tasks), unit="img", desc="batch", disable=not tasks) as bar:
        for row in map_in_workers(_process, tasks, workers, _init_worker, pipeline_options or {}):
            rows[row["file"]] = row
            if row["status"] != "ok":
                failed += 1
                on_error(f"ocr-restore: {row['error'].splitlines()[0]}")
            bar.update()
            bar.set_postfix(failed=failed)

    results_csv = out_dir / "results.csv"
    table = pd.DataFrame([rows[str(p.relative_to(in_dir))] for p in inputs])
    with atomic_path(results_csv) as tmp:
        table.to_csv(tmp, index=False)
    return BatchSummary(len(tasks) - failed, len(inputs) - len(tasks), failed, results_csv)
