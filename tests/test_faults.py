"""Tesseract's faults injected, as OCRmyPDF tests them: a fake `tesseract` first on PATH that crashes, hangs
past the timeout, prints garbage or finds an empty page. Each is a clear per-file error (or the empty
reading), a batch or a benchmark goes on, and the failed image leaves no output behind.

The fake is a small Python script; it needs no Tesseract. It answers `--version` and `--list-langs` as
Tesseract 5.3.0 with English, and reads the images as FAULT (its environment) says, on the calls listed
in FAULT_CALLS (1-based, comma-separated; all calls when unset), counted in FAKE_CALLS_DIR.
"""

import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ocr_restore import batch as batch_module
from ocr_restore import ocr
from ocr_restore.errors import MissingDependencyError, OcrError, OcrRestoreError

from .conftest import render_line

FAKE = textwrap.dedent('''\
    import os, signal, sys, time
    from pathlib import Path

    args, fault = sys.argv[1:], os.environ.get("FAULT", "")
    if args == ["--version"]:
        print("\\x89\\x00 not a version" if fault == "version-garbage" else "tesseract 5.3.0\\n leptonica-1.82.0")
        sys.exit(0)
    if args[:1] == ["--list-langs"]:
        print('List of available languages in "/fake/" (2):\\neng\\nosd')
        sys.exit(0)
    call = 1  # this call's number: the first free calls/N (exclusive creation: two readings run side by side)
    while True:
        try:
            os.close(os.open(os.path.join(os.environ["FAKE_CALLS_DIR"], str(call)), os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            call += 1
    if os.environ.get("FAULT_CALLS") and str(call) not in os.environ["FAULT_CALLS"].split(","):
        fault = ""
    base = args[1]
    header = "level\\tpage_num\\tblock_num\\tpar_num\\tline_num\\tword_num\\tleft\\ttop\\twidth\\theight\\tconf\\ttext\\n"
    if fault == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if fault == "abort":
        print("!strcmp(locale, \\"C\\"):Error:Assert failed:in file baseapi.cpp, line 209", file=sys.stderr, flush=True)
        os.abort()
    if fault == "hang":
        time.sleep(600)
    if fault == "fail":
        print("Error in pixReadStream: Unknown format: no pix returned", file=sys.stderr)
        sys.exit(1)
    if fault == "no-output":
        sys.exit(0)
    if fault == "garbage-bytes":
        Path(base + ".tsv").write_bytes(b"\\xff\\xfe\\x00garbage\\x81")
        sys.exit(0)
    if fault == "garbage-text":
        Path(base + ".tsv").write_text("Lorem ipsum\\tdolor sit\\namet\\tconsectetur\\n")
        sys.exit(0)
    if fault == "garbage-numbers":
        Path(base + ".tsv").write_text(header + "5\\t1\\t1\\t1\\t1\\t1\\tleft\\ttop\\t10\\t10\\t96\\tword\\n")
        sys.exit(0)
    if fault in ("empty", "empty-error"):  # 5.3 says so on stderr and writes only the page's row
        print("Empty page!!", file=sys.stderr)
        Path(base + ".tsv").write_text(header + "1\\t1\\t0\\t0\\t0\\t0\\t0\\t0\\t200\\t100\\t-1\\t\\n")
        sys.exit(1 if fault == "empty-error" else 0)
    Path(base + ".tsv").write_text(header + "5\\t1\\t1\\t1\\t1\\t1\\t10\\t10\\t80\\t30\\t91.5\\tfake\\n")
''')


@pytest.fixture
def fake_tesseract(tmp_path, monkeypatch):
    """Put the fake first on PATH; returns a function that sets its fault (and the calls it applies to)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "tesseract"
    script.write_text(f"#!{sys.executable}\n" + FAKE)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    (tmp_path / "calls").mkdir()
    monkeypatch.setenv("FAKE_CALLS_DIR", str(tmp_path / "calls"))
    monkeypatch.delenv("FAULT", raising=False)
    monkeypatch.setattr(ocr, "TIMEOUT", 1.0)  # for the hang: an A4 page gets 120 s
    # both are cached per process: the real Tesseract's answers must not stand in for the fake's, nor after it
    ocr.tesseract_version.cache_clear()
    ocr.check_tesseract.cache_clear()

    def set_fault(fault: str, calls: str = "") -> None:
        monkeypatch.setenv("FAULT", fault)
        monkeypatch.setenv("FAULT_CALLS", calls)

    yield set_fault
    ocr.tesseract_version.cache_clear()
    ocr.check_tesseract.cache_clear()


def test_the_fake_reads_as_tesseract(fake_tesseract):
    # without a fault the fake is a Tesseract that reads one word: the faults below are all it changes
    assert ocr.tesseract_version() == "5.3.0"
    result = ocr.recognise(render_line("Hello world"), psm=7)
    assert result.text == "fake" and result.words[0].confidence == 91  # pytesseract reads whole numbers


@pytest.mark.parametrize("fault, message", [
    ("crash", r"Tesseract crashed \(SIGSEGV\) on a \d+x\d+ image"),
    ("abort", r"Tesseract crashed \(SIGABRT\) on a \d+x\d+ image: .*Assert failed"),
    ("hang", r"Tesseract timed out after 1 s on a \d+x\d+ image; crop the image, or raise ocr.TIMEOUT"),
    ("fail", r"Tesseract failed \(status 1\): Error in pixReadStream"),
    ("no-output", r"Tesseract's output could not be read \(FileNotFoundError"),
    ("garbage-bytes", r"Tesseract's output could not be read \(UnicodeDecodeError"),
    ("garbage-text", r"Tesseract's output is not the TSV it writes \(KeyError: 'text'\); is .*/bin/tesseract Tesseract"),
    ("garbage-numbers", r"Tesseract's output is not the TSV it writes \(TypeError"),
])
def test_each_fault_is_a_clear_ocr_error(fake_tesseract, fault, message):
    fake_tesseract(fault)
    with pytest.raises(OcrError, match=message):
        ocr.recognise(render_line("Hello world"), psm=7)


@pytest.mark.parametrize("fault", ["empty", "empty-error"])
def test_an_empty_page_is_the_empty_reading(fake_tesseract, fault):
    fake_tesseract(fault)
    result = ocr.recognise(render_line("Hello world"), psm=7)
    assert result.text == "" and result.words == []


def test_a_tesseract_that_does_not_say_its_version_is_a_missing_dependency(fake_tesseract):
    # pytesseract raises SystemExit on a version it cannot parse: it must not end the caller
    fake_tesseract("version-garbage")
    with pytest.raises(MissingDependencyError, match=r"tesseract --version failed \(Invalid tesseract version: .* not a version \"\): reinstall it"):
        ocr.check_tesseract("eng")


@pytest.mark.parametrize("fault", ["crash", "hang", "garbage-text", "empty"])
def test_a_batch_goes_on_past_a_fault_and_keeps_no_output_of_the_failed_image(
        fake_tesseract, occluded_folder, tmp_path, fault):
    out = tmp_path / "out"
    options = {"detector": "classical", "inpainter": "telea"}
    # the second image, b.png: inputs run in order in one worker, each read twice (restored, and the input)
    fake_tesseract(fault, calls="3,4")
    summary = batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=options,
                                     on_error=lambda message: None)
    table = pd.read_csv(out / "results.csv", keep_default_na=False).set_index("file")
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    if fault == "empty":
        assert (summary.done, summary.failed) == (3, 0)
        assert table.at["b.png", "status"] == "ok" and table.at["b.png", "text"] == ""
        assert (out / "b.txt").read_text() == "\n"
        return
    assert (summary.done, summary.failed) == (2, 1)
    assert table.at["b.png", "status"] == "error" and table.at["a.png", "text"] == "fake"
    assert table.at["b.png", "error"].startswith(f"{occluded_folder / 'b.png'}: Tesseract")
    assert not [name for name in written if name.startswith("b.")]  # nothing of b, not even its restoration
    assert written == ["a.json", "a.mask.png", "a.restored.png", "a.txt", "results.csv",
                       "sub/c.json", "sub/c.mask.png", "sub/c.restored.png", "sub/c.txt"]

    fake_tesseract("")  # Tesseract mended: the rerun does b alone
    summary = batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options=options)
    assert (summary.done, summary.skipped, summary.failed) == (1, 2, 0)
    assert pd.read_csv(out / "results.csv").set_index("file").at["b.png", "text"] == "fake"


def test_a_benchmark_goes_on_past_a_fault_and_names_the_image(fake_tesseract, occluded_folder, tmp_path):
    from ocr_restore.evaluate.ocr import run_bench

    report = tmp_path / "report"
    fake_tesseract("crash", calls="1,2")  # the first image, a.png: its restoration and its input, read side by side
    heard = []
    run_bench(occluded_folder, report, masks=tmp_path / "masks", on_error=heard.append,
              pipeline_options={"detector": "classical", "inpainter": "telea"})
    errors = pd.read_csv(report / "errors.csv")
    assert list(errors["name"]) == ["a"]
    assert errors.at[0, "error"].startswith(f"{occluded_folder / 'a.png'}: Tesseract crashed")
    assert len(heard) == 1 and heard[0].startswith(f"ocr-restore: {occluded_folder / 'a.png'}: Tesseract crashed")
    assert sorted(pd.read_csv(report / "report.csv")["name"]) == ["b", "sub/c"]  # scored without it
    assert "- failed: 1 images, scored in no variant (errors.csv)" in (report / "report.md").read_text()

    fake_tesseract("crash")  # every image: nothing to score is an error, not an empty report
    with pytest.raises(OcrRestoreError, match=r"no image could be benchmarked .*errors.csv.*the first: .*a.png"):
        run_bench(occluded_folder, report, masks=tmp_path / "masks", on_error=heard.append,
                  pipeline_options={"detector": "classical", "inpainter": "telea"})
    assert len(pd.read_csv(report / "errors.csv")) == 3


def test_the_hang_is_killed_not_left_running(fake_tesseract):
    import subprocess

    fake_tesseract("hang")
    with pytest.raises(OcrError, match="timed out"):
        ocr.recognise(render_line("Hello world"), psm=7)
    running = subprocess.run(["pgrep", "-f", f"{Path(ocr.shutil.which('tesseract'))}"], capture_output=True, text=True)
    assert running.stdout == ""
