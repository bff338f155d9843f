"""Batch processing: the single-image pipeline over a folder tree, in parallel and resumable.

Each input's outputs are written atomically and its `.json` last, so the JSON
marks an input as done: a rerun skips it, and a killed run leaves no half file.
An input whose outputs cannot all be written (a full disk) keeps none of them and
is an error row; the rerun redoes it. A run holds OUT_DIR/.ocr-restore-batch.lock
(an flock, released by the kernel when the process ends, however it ends), so a
second run on the same folder is refused instead of writing the same files.
The input folder is only ever read.
"""

import contextlib
import fcntl
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

from .errors import InputFileError, OcrRestoreError, OutputError
from .files import atomic_path, find_images
from .pipeline import Pipeline

__all__ = ["map_in_workers", "run_batch", "BatchSummary"]

STAGES = ("read", "detect", "inpaint", "ocr")
OUTPUTS = (".restored.png", ".mask.png", ".txt", ".json")  # what Result.write writes, in its order
LOCK_FILE = ".ocr-restore-batch.lock"


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
    except OcrRestoreError as e:
        return _row(task.relative, "error", str(e))
    except Exception as e:  # a bug on one file must not cost the user the rest of the batch
        return _row(task.relative, "error", f"{task.path}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
    try:
        result.write(task.base)
    except Exception as e:
        # each file is whole (atomic), but a set without its .json would be half an output: none is kept
        for suffix in OUTPUTS:
            task.base.with_name(task.base.name + suffix).unlink(missing_ok=True)
        return _row(task.relative, "error", f"{task.path}: its outputs could not be written, none was kept "
                                            f"({e}); free space under {task.base.parent} and run the batch again")
    return _row(task.relative, "ok", record=result.to_json())


@contextlib.contextmanager
def _locked(out_dir: Path):
    """Hold OUT_DIR's lock for the block, or raise OutputError naming the lock file and the run that holds it.

    The lock is an flock, which the kernel drops when its process ends: a file left by a killed run
    blocks nothing. A run removes the file as it finishes, still holding it; a run that locked the file
    just before it went retries on the new one, so two runs never hold the lock at once.
    """
    path = out_dir / LOCK_FILE
    while True:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the batch's lock file ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputError(f"{path}: another `ocr-restore batch` (pid {holder}) is writing to {out_dir}; "
                              "wait for it to finish, or give another output folder") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)  # the file was removed by the run that held it: lock the one at the path now
    try:
        with contextlib.suppress(OSError):  # the pid only helps the message; a full disk must not stop the run here
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.unlink(path)
        os.close(fd)  # and with it the lock


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
    if not inputs:
        raise InputFileError(f"{in_dir}: no images found (looked for PNG, JPEG, TIFF, BMP, WebP)")
    with _locked(out_dir):
        return _run_locked(in_dir, out_dir, inputs, masks, workers, pipeline_options, on_error)


def _run_locked(in_dir, out_dir, inputs, masks, workers, pipeline_options, on_error) -> BatchSummary:
    """run_batch's work, under the output folder's lock: no other run's temporaries are removed here."""
    for stale in out_dir.rglob(".*.part*"):  # temporaries of a run killed mid-write
        stale.unlink()
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
    try:
        with atomic_path(results_csv) as tmp:
            table.to_csv(tmp, index=False)
    except OSError as e:  # the outputs done are kept; the rerun skips them and writes the table
        raise OutputError(f"{results_csv}: cannot be written ({e.strerror or e}); free space and run the batch "
                          "again: the images done are kept") from None
    return BatchSummary(len(tasks) - failed, len(inputs) - len(tasks), failed, results_csv)
