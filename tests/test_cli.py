"""The command line through click's runner, on generated images, with real Tesseract."""

import hashlib
import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from ocr_restore import batch as batch_module
from ocr_restore import files
from ocr_restore.cli import main
from ocr_restore.evaluate import speed

from .conftest import render_line, stroke_over

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")

CLASSICAL = ["--detector", "classical", "--inpainter", "telea"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def tree_digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_single_image_prints_text_and_writes_outputs(occluded_folder, tmp_path):
    image, mask = occluded_folder / "a.png", tmp_path / "masks" / "a.png"
    result = invoke(image, "--mask", mask, "-o", tmp_path / "out", *CLASSICAL)
    assert result.exit_code == 0, result.output
    assert "42" in result.stdout  # Telea may blur letters under the stroke
    assert "-- accuracy: CER" in result.stdout  # a.gt.txt sits beside the image
    assert "detector=given mask inpainter=telea reading=confident" in result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.mask.png", "a.restored.png", "a.txt"]
    record = json.loads((out / "a.json").read_text())
    assert record["stages"]["detector"] == "given mask" and record["stages"]["inpainter"] == "telea"
    assert record["accuracy"]["after"]["cer"] <= record["accuracy"]["before"]["cer"]
    assert {"text", "words", "seconds"} <= record.keys() and record["words"][0]["box"]
    written = np.asarray(Image.open(out / "a.mask.png"))
    assert set(np.unique(written)) <= {0, 255}
    assert np.array_equal(written > 0, np.asarray(Image.open(mask)) > 0)  # --mask overrides the detector


def test_json_output(occluded_folder):
    result = invoke(occluded_folder / "b.png", "--json", *CLASSICAL)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["file"].endswith("b.png") and "Partial" in record["text"]
    assert record["stages"]["detector"] == "classical"


def test_reading_restored_reads_the_restored_image_only(occluded_folder):
    result = invoke(occluded_folder / "b.png", "--json", "--reading", "restored", *CLASSICAL)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["stages"]["reading"] == "restored" and record["words_from_input"] == 0
    assert record["input_text"] and record["accuracy"]["before"]  # b.gt.txt asks for the input's reading, to score it


def test_mask_of_the_wrong_size_is_a_clear_error(occluded_folder, tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "small.png")
    result = invoke(occluded_folder / "a.png", "--mask", tmp_path / "small.png", *CLASSICAL)
    assert result.exit_code == 2
    assert "small.png: mask is 4x4 but the image is" in result.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    result = invoke(tmp_path / "nope.png", *CLASSICAL)
    assert result.exit_code == 2 and "nope.png: file not found" in result.stderr


def test_batch_writes_mirrored_tree_and_results(occluded_folder, tmp_path):
    before = tree_digest(occluded_folder)
    out = tmp_path / "out"
    result = invoke("batch", occluded_folder, "-o", out, "--masks", tmp_path / "masks", *CLASSICAL)
    assert result.exit_code == 0, result.output
    for stem in ("a", "b", "sub/c"):
        for suffix in (".txt", ".restored.png", ".mask.png", ".json"):
            assert (out / f"{stem}{suffix}").is_file()
    table = pd.read_csv(out / "results.csv")
    assert list(table["file"]) == ["a.png", "b.png", "sub/c.png"]
    assert (table["status"] == "ok").all()
    assert {"read_s", "detect_s", "inpaint_s", "ocr_s", "cer_before", "cer_after"} <= set(table.columns)
    for row in table.itertuples():  # the words read where, as the JSON has them
        words = json.loads((out / row.file).with_suffix(".json").read_text())["words"]
        assert (row.words_input, row.words_restored) == tuple(sum(w["source"] == s for w in words)
                                                              for s in ("input", "restored"))
    assert tree_digest(occluded_folder) == before  # the input folder is never modified

    again = invoke("batch", occluded_folder, "-o", out, "--masks", tmp_path / "masks", *CLASSICAL)
    assert "0 done, 3 already done, 0 failed" in again.stdout


def test_batch_killed_mid_write_resumes_with_nothing_lost_or_half_written(occluded_folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_replace, calls = files.os.replace, []

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 7:  # results.csv, the first image's four files, then the second's mask: the rest not
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options={"detector": "classical", "inpainter": "telea"})
    monkeypatch.undo()
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.json", "a.mask.png", "a.restored.png", "a.txt", "b.restored.png", "results.csv"]
    assert list(pd.read_csv(out / "results.csv")["file"]) == ["a.png"]  # results.csv grows as images finish

    summary = batch_module.run_batch(occluded_folder, out, tmp_path / "masks", pipeline_options={"detector": "classical", "inpainter": "telea"})
    assert (summary.done, summary.skipped, summary.failed) == (2, 1, 0)
    assert len(pd.read_csv(out / "results.csv")) == 3
    assert not [p for p in out.rglob("*") if ".part" in p.name]


def test_batch_cleans_temporary_files_left_by_a_hard_kill(occluded_folder, tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = out / "sub" / ".c.txt.x1y2.part.txt"
    stale.write_text("half")
    os.utime(stale, (time.time() - batch_module.STALE_SECONDS - 1,) * 2)
    invoke("batch", occluded_folder, "-o", out, "--masks", tmp_path / "masks", *CLASSICAL)
    assert not [p for p in out.rglob("*") if ".part" in p.name]


def test_batch_reports_bad_files_and_goes_on(occluded_folder, tmp_path):
    (occluded_folder / "empty.png").write_bytes(b"")
    (occluded_folder / "text.jpg").write_text("not an image")
    good = (occluded_folder / "a.png").read_bytes()
    (occluded_folder / "truncated.png").write_bytes(good[: len(good) // 3])
    before = tree_digest(occluded_folder)
    out = tmp_path / "out"
    result = invoke("batch", occluded_folder, "-o", out, *CLASSICAL)
    assert result.exit_code == 1
    assert "3 done, 0 already done, 3 failed" in result.stdout
    table = pd.read_csv(out / "results.csv").set_index("file")
    assert "empty.png: file is empty" in table.at["empty.png", "error"]
    assert "text.jpg: not an image in a supported format" in table.at["text.jpg", "error"]
    assert "truncated.png: truncated or corrupt" in table.at["truncated.png", "error"]
    assert "empty.png: file is empty" in result.stderr
    assert (table.loc[["a.png", "b.png", "sub/c.png"], "status"] == "ok").all()
    assert tree_digest(occluded_folder) == before


def test_batch_with_two_workers(occluded_folder, tmp_path):
    result = invoke("batch", occluded_folder, "-o", tmp_path / "out", "--workers", "2", "--masks", tmp_path / "masks", *CLASSICAL)
    assert result.exit_code == 0, result.output
    assert (pd.read_csv(tmp_path / "out" / "results.csv")["status"] == "ok").all()


def test_bench_writes_every_variant(occluded_folder, tmp_path):
    report = tmp_path / "report"
    result = invoke("bench", occluded_folder, "-o", report, "--masks", tmp_path / "masks",
                    "--clean", tmp_path / "clean", *CLASSICAL)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(report / "summary.csv", index_col="variant")
    assert list(summary.index) == ["occluded", "restored", "confident", "language", "telea", "ns", "clean"]
    assert {"cer", "wer", "word_accuracy", "recovered"} <= set(summary.columns)
    assert summary.at["clean", "cer"] <= summary.at["occluded", "cer"]
    assert len(pd.read_csv(report / "report.csv")) == 3
    markdown = (report / "report.md").read_text()
    assert "| variant   |" in markdown and "recovered" in markdown and "| restored  |" in markdown
    assert (report / "examples.png").stat().st_size > 10_000
    by_hidden = pd.read_csv(report / "trust.csv")
    assert list(by_hidden["hidden"]) == ["visible", "partly_hidden", "mostly_hidden", "source_language"]
    assert by_hidden["words"].sum() > 0 and by_hidden["wrong"].dropna().between(0, 1).all()


def test_bench_detector_reports_pixels_flagged_on_clean_real_images(tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    files.write_image(clean / "line.png", render_line(size=24))
    report = tmp_path / "detector"
    result = invoke("bench-detector", "-o", report, "--detector", "classical", "--n", 1, "--clean-real", clean)
    assert result.exit_code == 0, result.output
    real = pd.read_csv(report / "real.csv").iloc[0]
    assert real.set == str(clean) and real.images == 1 and real.fp_per_ink < 0.05
    markdown = (report / "detector.md").read_text()
    assert "per ink pixel" in markdown and "A4 page at 300 dpi" in markdown
    assert set(pd.read_csv(report / "detector.csv").kind) == {"all", "docs", "receipts", "scene"}


def test_bench_detector_reads_a_checkpoint_on_an_occluded_set(tmp_path):
    from ocr_restore.data.synth import write_synth_set
    from ocr_restore.nn.seg_unet import CONFIGS, SegUNet, save_seg_unet

    write_synth_set(tmp_path / "set", "receipts", 2, 5)
    weights = tmp_path / "detector.safetensors"
    save_seg_unet(weights, SegUNet(CONFIGS["tiny"]).eval())
    report = tmp_path / "report"
    result = invoke("bench-detector", "-o", report, "--weights", weights, "--n", 0, "--set", tmp_path / "set",
                    "--no-page-time")
    assert result.exit_code == 0, result.output
    found = pd.read_csv(report / "sets.csv").iloc[0]
    assert found.set == str(tmp_path / "set") and found.images == 2 and 0 <= found.recall <= 1
    markdown = (report / "detector.md").read_text()
    assert "Occluded sets" in markdown and "A4 page" not in markdown and not (report / "detector.csv").exists()
    result = invoke("bench-detector", "-o", report, "--detector", "classical", "--weights", weights)
    assert result.exit_code == 2 and "--weights are the model detector's" in result.output


def test_bench_speed_times_each_stage_on_an_a4_page_and_a_line(tmp_path):
    result = invoke("bench-speed", "-o", tmp_path, "--repeats", 1, *CLASSICAL)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "speed.csv").set_index(["image", "stage"])
    page, line = "A4 page, 300 dpi, 10 occluders", "text line"
    assert set(table.index) == {(image, stage) for image in (page, line)
                                for stage in ("detector (classical)", "inpainter (telea), true mask", "whole pipeline")}
    assert tuple(table.loc[(page, "whole pipeline"), ["height", "width"]]) == (3508, 2480)
    assert table.loc[(line, "whole pipeline"), "height"] < 100
    # the whole pipeline detects, restores and reads: it takes longer than its detector alone
    assert (table.ms > 0).all() and table.loc[(page, "whole pipeline"), "ms"] > table.loc[(page, "detector (classical)"), "ms"]
    assert "median of 1 runs" in (tmp_path / "speed.md").read_text()


def test_speed_pages_are_drawn_as_named():
    page, line = speed.a4_page(), speed.text_line()
    assert page.image.shape == (3508, 2480, 3) and len(page.shapes) == 10 and 0 < page.mask.mean() < 0.1
    assert line.image.shape[0] < 100 and line.mask.any()


def test_bench_reads_a_tsv_of_transcripts(occluded_folder, tmp_path):
    tsv = tmp_path / "gt.tsv"
    tsv.write_text("a.png\tHello world 42\nb.png\tPartial convolution\n")
    for sidecar in occluded_folder.rglob("*.gt.txt"):
        sidecar.unlink()
    result = invoke("bench", occluded_folder, "--gt", tsv, "-o", tmp_path / "r", "--masks", tmp_path / "masks", *CLASSICAL)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "r" / "report.csv")) == 2


@pytest.mark.parametrize("size", ["word", "page"])
def test_a_20_pixel_word_and_an_a4_page_at_300_dpi(tmp_path, size):
    from ocr_restore.metrics import score

    if size == "word":
        image, expected = render_line("Hello", size=12), "Hello"
        assert image.shape[0] <= 22
    else:
        image = np.full((3508, 2480, 3), 250, np.uint8)  # A4 at 300 dpi
        expected = "Restored page text 2026"
        line = render_line(expected, size=48)
        image[1600 : 1600 + line.shape[0], 300 : 300 + line.shape[1]] = line
        image, _ = stroke_over(image, thickness=3)
    Image.fromarray(image).save(tmp_path / "in.png")
    result = invoke(tmp_path / "in.png", "--json", *CLASSICAL)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    # a page-long stroke crosses the line, and Telea does not bring every letter back
    assert score(expected, record["text"]).cer < 0.35
    if size == "page":
        assert 0 < record["occluded_fraction"] < 0.01


def test_synth_draws_only_the_shapes_asked_for(tmp_path):
    made = invoke("synth", tmp_path / "thin", "--n", 2, "--seed", 5, "--shapes", "stroke,scribble")
    assert made.exit_code == 0, made.output
    kinds = {shape.split("/")[0] for shapes in pd.read_csv(tmp_path / "thin" / "meta.csv").shapes for shape in shapes.split(";")}
    assert kinds and kinds <= {"stroke", "scribble"}
    refused = invoke("synth", tmp_path / "bad", "--n", 1, "--shapes", "stroke,bar")
    assert refused.exit_code != 0 and "bar: choose among line, stroke" in refused.output
    assert not (tmp_path / "bad").exists()


def test_a_synth_set_feeds_bench_and_batch_directly(tmp_path):
    made = invoke("synth", tmp_path / "set", "--kind", "receipts", "--n", 2, "--seed", 5)
    assert made.exit_code == 0, made.output
    s = tmp_path / "set"
    assert f"--recoverable {s / 'recoverable'}" in made.stdout
    bench = invoke("bench", s / "occluded", "--masks", s / "mask", "--clean", s / "clean",
                   "--recoverable", s / "recoverable", "-o", tmp_path / "r", *CLASSICAL)
    assert bench.exit_code == 0, bench.output
    assert len(pd.read_csv(tmp_path / "r" / "report.csv")) == 2
    summary = pd.read_csv(tmp_path / "r" / "summary.csv", index_col="variant")
    assert list(summary.index[-2:]) == ["recoverable", "clean"]
    assert summary["cer"].notna().all()
    assert "recoverable" in (tmp_path / "r" / "report.md").read_text()
    batch = invoke("batch", s / "occluded", "-o", tmp_path / "out", "--masks", s / "mask", *CLASSICAL)
    assert batch.exit_code == 0 and "2 done" in batch.stdout


def test_auto_falls_back_loudly_when_weights_are_missing(occluded_folder, tmp_path, monkeypatch):
    from ocr_restore import detect, inpaint

    monkeypatch.setattr(detect, "DEFAULT_WEIGHTS", tmp_path / "absent-detector.safetensors")
    monkeypatch.setattr(inpaint, "DEFAULT_WEIGHTS", tmp_path / "absent-pconv.safetensors")
    result = invoke(occluded_folder / "a.png", "--json", "--detector", "auto", "--inpainter", "auto")
    assert result.exit_code == 0, result.output
    assert "absent-detector.safetensors" in result.stderr and "falling back to the classical detector" in result.stderr
    assert "absent-pconv.safetensors" in result.stderr and "falling back to the telea inpainter" in result.stderr
    stages = json.loads(result.stdout)["stages"]
    assert stages | {"ocr": None, "language": None, "reading": None} == {
        "detector": "classical", "inpainter": "telea", "ocr": None, "reading": None, "language": None}
    assert stages["reading"].startswith("confident")
