"""Coverage-guided fuzzing of the readers with atheris (libFuzzer): `make fuzz` (FUZZ_SECONDS, default 3600).

Each input is written to a file and read as an image, as a mask, as a TSV of transcripts and as a
plain transcript. The property is the Hypothesis suite's (tests/test_fuzz.py): a result or an
OcrRestoreError, nothing else. A Python exception of any other kind is recorded, its input saved under
the findings folder, and the run goes on; a hang (an input over -timeout s) or a native crash stops
libFuzzer, which saves the input itself (timeout-*, crash-*). The run ends by printing how many inputs
it tried and what it found; it exits 1 when it found anything.

The seeds are tests/seeds.py's small valid files in every format and mode the reader takes, so
libFuzzer starts from real headers and mutates from there; the corpus it grows is kept in WORK_DIR.

    python fuzz/fuzz_readers.py WORK_DIR SECONDS [libFuzzer options]
"""

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.seeds
import cv2  # noqa: F401  (imported before instrumenting: numpy and OpenCV are not under test)
import numpy as np

with atheris.instrument_imports():  # coverage of Pillow's Python plugins and our readers guides the mutations
    from PIL import Image

    Image.init()  # imports every format plugin now, inside the block: Image.open would import them uninstrumented

    from ocr_restore import files
    from ocr_restore.errors import OcrRestoreError
    from tests.seeds import SEED_SHAPE, seed_files

# Decoding is bounded by the pixel limit; at the real one (600 Mpx) an input that claims a big image
# takes seconds and gigabytes, and libFuzzer would spend the hour on a few of them. The limit's code
# path is the same at any value.
files.MAX_IMAGE_PIXELS = 4_000_000
PROGRESS_EVERY = 300  # seconds between progress lines


class Target:
    """Reads each input every way a user's file is read; counts inputs and records unexpected exceptions."""

    def __init__(self, work: Path, seconds: float):
        self.scratch = Path(tempfile.mkdtemp(prefix="ocr-restore-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
        self.image = self.scratch / "input.png"
        self.sidecar = self.scratch / "input.gt.txt"
        self.tsv = self.scratch / "gt.tsv"
        self.findings_dir = work / "findings"
        self.findings_dir.mkdir(parents=True, exist_ok=True)
        self.seconds, self.start, self.last_report = seconds, time.monotonic(), time.monotonic()
        self.inputs, self.findings = 0, {}  # (exception type, where) -> (count, saved file)

    def __call__(self, data: bytes) -> None:
        self.inputs += 1
        for path in (self.image, self.sidecar, self.tsv):
            path.write_bytes(data)
        for read in (lambda: files.read_image(self.image),
                     lambda: files.read_mask(self.image, SEED_SHAPE),
                     lambda: files.read_transcripts(self.tsv),
                     lambda: files.find_transcript(self.image),
                     lambda: files.find_transcript(self.image, self.tsv),
                     lambda: files.find_transcript(self.image, self.sidecar)):
            try:
                read()
            except OcrRestoreError:
                pass
            except Exception as e:  # the finding: any other exception escapes to the user
                self.record(e, data)
        now = time.monotonic()
        if now - self.last_report >= PROGRESS_EVERY:
            self.last_report = now
            self.report(f"fuzz: {self.inputs} inputs in {now - self.start:.0f} s, {len(self.findings)} findings")
        if now - self.start >= self.seconds:
            self.finish()

    def record(self, error: Exception, data: bytes) -> None:
        frames = traceback.extract_tb(error.__traceback__)
        frame = next((f for f in reversed(frames) if not f.filename.startswith("<")), frames[-1])  # not <frozen codecs>
        key = (type(error).__name__, f"{Path(frame.filename).name}:{frame.lineno}")
        count, saved = self.findings.get(key, (0, None))
        if saved is None:
            saved = self.findings_dir / f"{key[0]}-{key[1].replace(':', '-')}.bin"
            saved.write_bytes(data)
            self.report(f"fuzz: FOUND {key[0]} at {key[1]}: {error}\n  input saved as {saved}\n"
                        + "".join(traceback.format_exception(error)))
        self.findings[key] = (count + 1, saved)

    @staticmethod
    def report(line: str) -> None:
        print(line, flush=True)  # stdout: libFuzzer's -close_fd_mask=2 silences the decoders' warnings on stderr

    def finish(self) -> None:
        elapsed = time.monotonic() - self.start
        self.report(f"fuzz: tried {self.inputs} inputs in {elapsed:.0f} s; "
                    f"{sum(c for c, _ in self.findings.values())} unhandled exceptions of {len(self.findings)} kinds")
        for (kind, where), (count, saved) in sorted(self.findings.items()):
            self.report(f"  {kind} at {where}: {count} inputs, e.g. {saved}")
        for path in (self.image, self.sidecar, self.tsv):
            path.unlink(missing_ok=True)
        self.scratch.rmdir()
        os._exit(1 if self.findings else 0)  # libFuzzer has no clean way out of Fuzz(); its own atexit is not needed


def main() -> None:
    work, seconds, options = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in seed_files().items():
        (corpus / f"seed-{name}").write_bytes(data)
    target = Target(work, seconds)
    Target.report(f"fuzz: {seconds:.0f} s on read_image, read_mask, read_transcripts, find_transcript; corpus {corpus}")
    # the corpus folder grows with every input that found new coverage: a later run starts from there
    atheris.Setup([sys.argv[0], str(corpus), f"-artifact_prefix={work}/", "-timeout=30", "-rss_limit_mb=6144",
                   "-close_fd_mask=2", f"-max_total_time={int(seconds) + 600}", *options], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
