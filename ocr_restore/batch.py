"""Batch processing: the single-image pipeline over a folder tree, in parallel and resumable.

Each input's outputs are written atomically and its `.json` last, so the JSON
marks an input as done: a rerun skips it, and a killed run leaves no half file.
An input whose outputs cannot all be written (a full disk) keeps none of them and
is an error row; the rerun redoes it. A run holds OUT_DIR/.ocr-restore-batch.lock
(an flock, released by the kernel when the process ends, however it ends), so a
second run on the same folder is refused instead of writing the same files.
The input folder is only ever read. results.csv is written first with the inputs
already done and grows a row as each input finishes, so a killed run keeps the rows
of what it wrote; the finished run rewrites it in input order.

Where the work runs is an engine: `Processes` on this machine, or
`cluster.DaskCluster`. An engine maps a function over tasks, each worker set up
once by an initializer, and yields the results as they finish.
"""

import contextlib
import fcntl
import json
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import pandas as pd
import torch
from tqdm import tqdm

from .errors import InputFileError, OcrRestoreError, OutputError
from .choices import DPI
from .files import atomic_path, document_text, find_images, page_stem, pages, write_text
from .formats import SUFFIXES, write_formats
from .pipeline import Pipeline

__all__ = ["Engine", "Processes", "map_in_workers", "run_batch", "BatchSummary"]

STAGES = ("read", "detect", "inpaint", "ocr")
SCORES, WHENS = ("cer", "wer", "word_accuracy"), ("before", "after")  # Pipeline's accuracy, when a transcript is found
SOURCES = ("input", "restored", "language")  # where a word came from (ocr.Word.source): results.csv counts each
COLUMNS = ["file", "page", "status", "error", "text", *(f"{stage}_s" for stage in STAGES), "detector", "inpainter", "ocr",
           *(f"words_{source}" for source in SOURCES),
           *(f"{name}_{when}" for when in WHENS for name in SCORES)]  # results.csv's, fixed: rows are appended
OUTPUTS = (".restored.png", ".mask.png", ".txt", ".json")  # what Result.write writes, in its order
LOCK_FILE = ".ocr-restore-batch.lock"
STALE_SECONDS = 600  # a temporary older than this is a killed write's; no single output takes that long to write


def result_row(file: str, status: str, error: str = "", record: dict | None = None, page: int | None = None) -> dict:
    """One row of results.csv: an input's (a document's page `page`, from 0) status and error, or the JSON
    `record` of its result. Pages count from 1 in the table, as in the file names."""
    record = record or {}
    row = {"file": file, "page": None if page is None else page + 1, "status": status, "error": error,
           "text": record.get("text", "")}
    row.update({f"{stage}_s": record.get("seconds", {}).get(stage) for stage in STAGES})
    row.update({k: record.get("stages", {}).get(k) for k in ("detector", "inpainter", "ocr")})
    if "words" in record:
        row.update({f"words_{source}": sum(w.get("source") == source for w in record["words"]) for source in SOURCES})
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
    page: int | None = None  # a document's page, from 0
    dpi: int = DPI
    formats: tuple[str, ...] = ()  # hOCR, ALTO: formats.FORMATS

    def add_formats(self, record: dict) -> None:
        """Those of `formats` a done output lacks, from its JSON `record`."""
        missing = tuple(name for name in self.formats if not self.base.with_name(self.base.name + SUFFIXES[name]).exists())
        try:
            write_formats(self.base, record, missing, self.path.name, self.page)
        except OSError as e:
            raise OutputError(f"{self.base}: cannot be written ({e.strerror or e}); free space and run again") from None

    def row(self, status: str, error: str = "", record: dict | None = None) -> dict:
        return result_row(self.relative, status, error, record, self.page)


_pipeline: Pipeline | None = None


def _init_worker(options: dict) -> None:
    global _pipeline
    _pipeline = Pipeline(**options)


class Engine(Protocol):
    """Where a batch runs: `function` over `tasks`, each worker set up once by `initializer(options)`."""

    def map(self, function, tasks: list, initializer, options: dict) -> Iterator:
        """The results of `function(task)`, in order of completion."""


@dataclass(frozen=True)
class Processes:
    """This machine: `workers` processes sharing its cores."""

    workers: int = 1

    def map(self, function, tasks: list, initializer, options: dict) -> Iterator:
        return map_in_workers(function, tasks, self.workers, initializer, options)


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
    with multiprocessing.get_context("spawn").Pool(workers, set_up_worker, (threads, initializer, options)) as pool:
        yield from pool.imap_unordered(function, tasks)


def set_up_worker(threads: int, initializer, options: dict) -> None:
    """Set up a worker to use `threads` cores, Tesseract's included."""
    torch.set_num_threads(threads)
    os.environ["OMP_THREAD_LIMIT"] = str(threads)  # Tesseract's OpenMP threads, as OCRmyPDF limits them
    initializer(options)


def _process(task: _Task) -> dict:
    """Run one input; any failure becomes an error row so the batch goes on."""
    try:
        if task.mask is not None and not task.mask.is_file():
            raise InputFileError(f"{task.path}: no mask at {task.mask}")
        result = _pipeline.run_file(task.path, task.mask, page=task.page, dpi=task.dpi)
    except OcrRestoreError as e:
        return task.row("error", str(e))
    except Exception as e:  # a bug on one file must not cost the user the rest of the batch
        return task.row("error", f"{task.path}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
    try:
        result.write(task.base, task.formats, task.path.name, task.page)
    except Exception as e:
        # each file is whole (atomic), but a set without its .json would be half an output: none is kept
        for suffix in (*OUTPUTS, *(SUFFIXES[name] for name in task.formats)):
            task.base.with_name(task.base.name + suffix).unlink(missing_ok=True)
        return task.row("error", f"{task.path}: its outputs could not be written, none was kept ({e}); free "
                                 f"space under {task.base.parent} and run the batch again")
    return task.row("ok", record=result.to_json())


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
    engine: Engine = Processes(),
    pipeline_options: dict | None = None,
    on_error=lambda message: tqdm.write(message, file=sys.stderr),
    dpi: int = DPI,
    formats: tuple[str, ...] = (),
) -> BatchSummary:
    """Process every image under `in_dir` into `out_dir` on `engine`, skipping inputs already done; write results.csv.
    Each output also gets the `formats` asked for (hOCR, ALTO); one done before without them gets them now.

    A document (a PDF, rasterised at `dpi`, or a multi-page TIFF) is a page per task and a row per page:
    `scan.p0001.*` for each, then `scan.txt` for the whole once every page is done.

    Workers read `in_dir` and write `out_dir` themselves: on a cluster both must be paths every worker reaches.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if out_dir.resolve() == in_dir.resolve():
        raise InputFileError(f"{out_dir}: the output folder must differ from the input folder")
    inputs = find_images(in_dir, exclude=out_dir, documents=True)
    if not inputs:
        raise InputFileError(f"{in_dir}: no images found (looked for PNG, JPEG, TIFF, BMP, WebP, PDF)")
    with _locked(out_dir):
        return _run_locked(in_dir, out_dir, inputs, masks, engine, pipeline_options, on_error, dpi, tuple(formats))


def _remove_temporaries(out_dir: Path) -> None:
    """Remove the temporaries of writes that were killed, under the lock.

    Only those untouched for STALE_SECONDS: a cluster's worker may still be writing for a client that was
    killed a moment ago, and a write whose temporary vanished would fail.
    """
    now = time.time()
    for part in out_dir.rglob(".*.part*"):
        with contextlib.suppress(FileNotFoundError):
            if now - part.stat().st_mtime > STALE_SECONDS:
                part.unlink()


def _run_locked(in_dir, out_dir, inputs, masks, engine, pipeline_options, on_error, dpi, formats) -> BatchSummary:
    """run_batch's work, under the output folder's lock."""
    _remove_temporaries(out_dir)
    rows, tasks, documents, failed = {}, [], {}, 0  # rows by (file, page); documents: pages by output stem
    claimed = {}  # output stem: the input that writes it
    for path in inputs:
        relative = path.relative_to(in_dir)
        stem = relative.with_suffix("")
        try:
            if stem in claimed:  # scan.png and scan.pdf: the second would overwrite the first's outputs
                raise InputFileError(f"{path}: its outputs would overwrite those of {in_dir / claimed[stem]}, "
                                     f"{out_dir / stem}.*; rename one of the two")
            claimed[stem] = relative
            to_read = pages(path)
        except OcrRestoreError as e:  # and an encrypted or broken PDF: one error row, as a broken image
            rows[str(relative), None] = result_row(str(relative), "error", str(e))
            on_error(f"ocr-restore: {e}")
            failed += 1
            continue
        if to_read != [None]:
            documents[stem] = len(to_read)
        for page in to_read:
            name = stem.with_name(page_stem(stem.name, page))
            base = out_dir / name
            task = _Task(path, str(relative), base, masks / f"{name}.png" if masks else None, page, dpi, formats)
            record = _done_record(base.with_name(base.name + ".json"))
            if record is None:
                tasks.append(task)
            else:
                task.add_formats(record)  # from the record: nothing is read again
                rows[str(relative), page] = task.row("ok", record=record)

    skipped = sum(row["status"] == "ok" for row in rows.values())
    results_csv = out_dir / "results.csv"
    _write_results(results_csv, rows.values())  # what is done already; a killed run keeps at least these rows
    with (open(results_csv, "a", encoding="utf-8", newline="") as journal,
          tqdm(total=len(tasks), unit="image", desc="batch", disable=not tasks) as bar):
        for row in engine.map(_process, tasks, _init_worker, pipeline_options or {}):
            rows[row["file"], None if row["page"] is None else row["page"] - 1] = row
            _append_row(journal, row)
            if row["status"] != "ok":
                failed += 1
                on_error(f"ocr-restore: {row['error'].splitlines()[0]}")
            bar.update()
            bar.set_postfix(errors=failed)
    _remove_temporaries(out_dir)  # and those a worker killed during this (long) run left, once stale
    for stem, count in documents.items():
        _write_document(out_dir / stem, count)
    order = {str(path.relative_to(in_dir)): i for i, path in enumerate(inputs)}
    _write_results(results_csv, [rows[key] for key in sorted(rows, key=lambda k: (order[k[0]], k[1] or 0))])
    return BatchSummary(sum(row["status"] == "ok" for row in rows.values()) - skipped, skipped, failed, results_csv)


def _write_document(base: Path, count: int) -> None:
    """`<base>.txt`, a document's text, once every page is done: the pages' texts, a form feed between them."""
    records = [_done_record(base.with_name(f"{page_stem(base.name, page)}.json")) for page in range(count)]
    if all(records):
        write_text(base.with_name(base.name + ".txt"), document_text([record["text"] for record in records]))


def _table(rows) -> pd.DataFrame:
    counts = {name: "Int64" for name in ("page", *(f"words_{source}" for source in SOURCES))}
    return pd.DataFrame(list(rows), columns=COLUMNS).astype(counts)  # whole numbers, or empty (an image's page)


def _write_results(results_csv: Path, rows) -> None:
    try:
        with atomic_path(results_csv) as tmp:
            _table(rows).to_csv(tmp, index=False)
    except OSError as e:  # the outputs done are kept; the rerun skips them and writes the table
        raise OutputError(f"{results_csv}: cannot be written ({e.strerror or e}); free space and run the batch "
                          "again: the images done are kept") from None


def _append_row(journal, row: dict) -> None:
    """One row at the end of results.csv, flushed: a killed run keeps it. The rewrite at the end orders them."""
    with contextlib.suppress(OSError):  # a full disk: the outputs themselves tell what is done, and the end says
        _table([row]).to_csv(journal, header=False, index=False)
        journal.flush()
