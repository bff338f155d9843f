"""Benchmark sets on disk: layout, exact masks, transcripts, refusal to clobber other folders."""

import csv

import cv2
import numpy as np
import pytest

from ocr_restore.data.synth import occlude_real_set, save_sample_grid, write_synth_set
from ocr_restore.data.render import render
from ocr_restore.errors import InputFileError
from ocr_restore.files import read_image, read_mask, read_transcripts, write_image


def assert_mask_is_the_hole(mask, clean, occluded, shapes: str):
    """Every changed pixel; more only where a paper-coloured shape painted (unchanged paper under a white-out)."""
    changed = (clean != occluded).any(-1)
    assert changed.any() and (mask >= changed).all()
    if "/paper" not in shapes:
        assert np.array_equal(mask, changed)


def test_synth_set_layout_and_contents(tmp_path):
    out = write_synth_set(tmp_path / "set", "receipts", 4, seed=1)
    names = [f"{i:05d}" for i in range(4)]
    truth = read_transcripts(out / "gt.tsv")
    assert sorted(truth) == names
    assert read_transcripts(out / "occluded") == truth == read_transcripts(out / "clean")
    for name in names:
        clean, occluded = read_image(out / "clean" / f"{name}.png"), read_image(out / "occluded" / f"{name}.png")
    rows = list(csv.DictReader((out / "meta.csv").open()))
    for name, row in zip(names, rows):
        clean, occluded = read_image(out / "clean" / f"{name}.png"), read_image(out / "occluded" / f"{name}.png")
        assert_mask_is_the_hole(read_mask(out / "mask" / f"{name}.png", clean.shape[:2]), clean, occluded, row["shapes"])
    assert [r["name"] for r in rows] == [f"{n}.png" for n in names]
    assert all(0.04 <= float(r["coverage"]) <= 0.34 and r["shapes"] and int(r["chars"]) > 0 for r in rows)
    assert sorted(p.stem for p in (out / "recoverable").iterdir()) == names
    assert not list(out.rglob("*.part*"))


def test_sets_are_prefixes_and_rerunnable(tmp_path):
    big = write_synth_set(tmp_path / "big", "scene", 3, seed=2)
    small = write_synth_set(tmp_path / "small", "scene", 2, seed=2)
    assert (big / "occluded" / "00001.png").read_bytes() == (small / "occluded" / "00001.png").read_bytes()
    (big / "notes.txt").write_text("mine")
    write_synth_set(big, "scene", 1, seed=5)  # a previous set is replaced, a user's file stays
    assert not (big / "clean" / "00002.png").exists() and (big / "notes.txt").read_text() == "mine"


def test_refuses_a_folder_that_is_not_a_set(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(InputFileError, match="not empty"):
        write_synth_set(tmp_path / "photos", "docs", 1, seed=0)
    assert (tmp_path / "photos" / "holiday.jpg").read_bytes() == b"x"


def test_occlude_real_set(tmp_path):
    src = tmp_path / "real"
    rng = np.random.default_rng(0)
    samples = [render("scene", rng) for _ in range(3)]
    for i, sample in enumerate(samples):
        write_image(src / f"w{i}.jpg", sample.image)
    (src / "labels.tsv").write_text("".join(f"w{i}.jpg\t{s.text}\n" for i, s in enumerate(samples)))
    out = occlude_real_set(src, tmp_path / "out", seed=0)
    assert read_transcripts(out / "gt.tsv") == {f"w{i}": s.text for i, s in enumerate(samples)}
    for i in range(3):
        clean = read_image(out / "clean" / f"w{i}.png")
        occluded = read_image(out / "occluded" / f"w{i}.png")
        assert np.array_equal(clean, read_image(src / f"w{i}.jpg"))
        shapes = next(r["shapes"] for r in csv.DictReader((out / "meta.csv").open()) if r["name"] == f"w{i}.png")
        assert_mask_is_the_hole(read_mask(out / "mask" / f"w{i}.png"), clean, occluded, shapes)
        # the characters are the ink's components: only the wholly hidden ones, near the hole, are erased
        erased = (read_image(out / "recoverable" / f"w{i}.png") != clean).any(-1)
        assert not (erased & ~cv2.dilate(read_mask(out / "mask" / f"w{i}.png").view(np.uint8), np.ones((9, 9))).view(bool)).any()


def test_sample_grid(tmp_path):
    path = save_sample_grid(tmp_path / "grid.png", seed=0, per_kind=1, width=600)
    assert read_image(path).shape[1] == 600
