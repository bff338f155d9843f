"""Crash safety beyond kill -9: a disk that fills mid-batch, and two batches on one output folder."""

import errno
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from ocr_restore import batch as batch_module
from ocr_restore import files
from ocr_restore.errors import InputFileError, OutputError

CLASSICAL = {"detector": "classical", "inpainter": "telea"}


def outputs(folder: Path) -> dict[str, bytes]:
    """The restored images, masks and texts under `folder` (the JSON and results.csv hold timings)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.name.endswith((".restored.png", ".mask.png", ".txt"))}


class FullDisk:
    """Writes through files.py that take `free` bytes in all, then fail as a full disk does: the bytes that
    fit are written (a truncated file), then OpenCV returns False and Python raises ENOSPC."""

    def __init__(self, monkeypatch, free: int):
        self.free = free

        def imwrite(path, image, *args):
            ok, data = cv2.imencode(Path(path).suffix, image, *args)
            return self.take(Path(path), data.tobytes(), lambda p, d: p.write_bytes(d))

        def write_text(path, text, *args, **kwargs):
            if not self.take(path, text.encode(), lambda p, d: p.write_bytes(d)):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(files.cv2, "imwrite", imwrite)
        monkeypatch.setattr(Path, "write_text", write_text)

    def take(self, path: Path, data: bytes, write) -> bool:
        fits = data[: self.free]
        write(path, fits)
        self.free -= len(fits)
        return len(fits) == len(data)


def test_a_disk_full_mid_batch_keeps_no_half_output_and_the_rerun_completes(occluded_folder, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    batch_module.run_batch(occluded_folder, reference, tmp_path / "masks", pipeline_options=CLASSICAL)
    a_size = sum(p.stat().st_size for p in reference.glob("a.*"))
    b_restored, b_mask = ((reference / f"b.{name}.png").stat().st_size for name in ("restored", "mask"))

    out = tmp_path / "out"
    # full halfway through b's mask: its restored image, whole, is on the disk and must go
    disk = FullDisk(monkeypatch, free=a_size + b_restored + b_mask // 2)
    errors = []
    summary = batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=CLASSICAL,
                                     on_error=errors.append)
    assert disk.free == 0 and (summary.done, summary.failed) == (1, 2)  # a; then b and c find the disk full
    assert f"{occluded_folder / 'b.png'}: its outputs could not be written, none was kept" in errors[0]
    assert "free space under" in errors[0] and "and run the batch again" in errors[0]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.json", "a.mask.png", "a.restored.png", "a.txt", "results.csv"]  # no half file, no temporary
    table = pd.read_csv(out / "results.csv").set_index("file")
    assert list(table["status"]) == ["ok", "error", "error"]

    monkeypatch.undo()  # space freed
    summary = batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=CLASSICAL)
    assert (summary.done, summary.skipped, summary.failed) == (2, 1, 0)
    assert outputs(out) == outputs(reference)
    assert set(pd.read_csv(out / "results.csv")["status"]) == {"ok"}


def test_a_disk_full_at_the_results_table_is_a_clear_error_and_the_rerun_writes_it(occluded_folder, tmp_path,
                                                                                  monkeypatch):
    to_csv = pd.DataFrame.to_csv

    def full_at_the_end(self, path, **kwargs):  # the disk fills while the images are done
        if len(self) < 3:
            return to_csv(self, path, **kwargs)
        Path(path).write_bytes(b"file,sta")  # what fitted
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_at_the_end)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match=r"results\.csv: cannot be written \(No space left on device\); free space "
                                          r"and run the batch again: the images done are kept"):
        batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=CLASSICAL)
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    assert len(pd.read_csv(out / "results.csv")) == 3  # the rows appended as the images finished
    monkeypatch.undo()
    summary = batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=CLASSICAL)
    assert (summary.done, summary.skipped) == (0, 3) and len(pd.read_csv(out / "results.csv")) == 3


def test_a_second_batch_on_the_same_folder_is_refused_while_the_first_runs(occluded_folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    started, release, first = threading.Event(), threading.Event(), {}
    process = batch_module._process

    def slow_process(task):  # the first run stops inside its work until the second has tried
        started.set()
        release.wait(30)
        return process(task)

    monkeypatch.setattr(batch_module, "_process", slow_process)
    thread = threading.Thread(target=lambda: first.setdefault("summary", batch_module.run_batch(
        occluded_folder, out, tmp_path / "masks", pipeline_options=CLASSICAL)))
    thread.start()
    try:
        assert started.wait(30)
        lock = out / batch_module.LOCK_FILE
        with pytest.raises(OutputError, match=rf"{lock}: another `ocr-restore batch` \(pid \d+\) is writing to {out}; "
                                              "wait for it to finish, or give another output folder"):
            batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=CLASSICAL)
    finally:
        release.set()
        thread.join()
    assert first["summary"].done == 3 and not (out / batch_module.LOCK_FILE).exists()  # the first finished untouched


def test_the_lock_of_a_killed_batch_blocks_nothing(occluded_folder, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from ocr_restore.batch import _locked\n"
                               "with _locked(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)", out],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(OutputError, match=rf"another `ocr-restore batch` \(pid {holder.pid}\)"):
            batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=CLASSICAL)
    finally:
        holder.kill()  # SIGKILL: its lock file stays behind
        holder.wait()
    assert (out / batch_module.LOCK_FILE).exists()
    summary = batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=CLASSICAL)
    assert summary.done == 3 and not (out / batch_module.LOCK_FILE).exists()


# the memory bound: a page that would not fit is refused before the work, not killed by the kernel halfway


def test_an_image_over_the_pixel_limit_is_refused_before_any_work(monkeypatch):
    from ocr_restore.pipeline import Pipeline

    pipeline = Pipeline("classical", "telea")
    monkeypatch.setattr(pipeline, "detector", lambda image: pytest.fail("the detector ran"))
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (30_001, 20_000, 3))  # 600 Mpx and one row, in no memory
    with pytest.raises(InputFileError, match=r"the image is 20000x30001, 600,020,000 pixels: the pipeline takes up to "
                                             r"600,000,000, within 8 GiB; split it"):
        pipeline.restore(huge)


def test_an_image_that_would_not_fit_in_the_memory_available_is_refused_before_any_work(monkeypatch):
    from ocr_restore.pipeline import Pipeline

    pipeline = Pipeline("classical", "telea")
    monkeypatch.setattr(pipeline, "detector", lambda image: pytest.fail("the detector ran"))
    monkeypatch.setattr(files, "_available_memory", lambda: 200 * 2**20)  # a machine with 200 MiB free
    page = np.broadcast_to(np.full((1, 1, 3), 255, np.uint8), (3508, 2480, 3))  # an A4 page at 300 dpi: 100 MB
    files.check_memory(page.shape)
    page = np.broadcast_to(page[:1, :1], (7016, 4960, 3))  # A2: 400 MB
    with pytest.raises(InputFileError, match=r"the image is 4960x7016: restoring it takes about 0.4 GiB more, and "
                                             r"0.2 GiB is available; free memory, run fewer --workers, or split it"):
        pipeline.restore(page)


def test_the_memory_available_is_read():
    available = files._available_memory()
    assert available is not None and 0 < available < 2**50  # the kernel's MemAvailable, on Linux


def test_a_file_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", 20_000, 30_001) + png[24:29]  # the header says 600,020,000 pixels; the data is one
    png[16:33] = ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    (tmp_path / "bomb.png").write_bytes(bytes(png))
    with pytest.raises(InputFileError, match=r"bomb\.png: over the pipeline's limit of 600,000,000 pixels, which keeps "
                                             r"it within 8 GiB \(Image size \(600020000 pixels\) exceeds"):
        files.read_image(tmp_path / "bomb.png")
