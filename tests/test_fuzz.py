"""Property-based fuzzing: whatever bytes a file holds and whatever array is given as a mask, the readers and
the stages give a valid result or an OcrRestoreError (an InputFileError naming the file), never another exception.

A small budget runs in CI; `make fuzz` (fuzz/fuzz_readers.py) runs atheris on the same readers for an hour.
Every input either of them found is a regression test at the end of this file.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from ocr_restore.errors import InputFileError, OcrRestoreError
from ocr_restore.files import as_mask, find_transcript, read_image, read_mask, read_transcripts
from ocr_restore.inpaint import build_inpainter

from .conftest import render_line, stroke_over
from .seeds import SEED_SHAPE, seed_files

# The same examples on every run (derandomize, no example database left in the checkout): CI passes or fails
# on the code alone, and searching further is `make fuzz`'s work. deadline=None: the first examples pay for
# imports and the model's first run; the budget is in examples.
FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(FAST, max_examples=40)


SEEDS = seed_files()


def read_every_way(folder: Path, data: bytes) -> None:
    """`data` as an image, a mask, a TSV of transcripts and a sidecar: each a valid result or an OcrRestoreError."""
    image, tsv, sidecar = folder / "input.png", folder / "gt.tsv", folder / "input.gt.txt"
    for path in (image, tsv, sidecar):
        path.write_bytes(data)
    try:
        pixels = read_image(image)
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.size > 0
    except OcrRestoreError as e:
        assert str(image) in str(e)
    try:
        mask = read_mask(image, SEED_SHAPE)
        assert mask.dtype == bool and mask.shape == SEED_SHAPE
    except InputFileError as e:
        assert str(image) in str(e)
    try:
        truth = read_transcripts(tsv)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in truth.items())
    except InputFileError as e:
        assert str(tsv) in str(e)
    for gt in (None, tsv, sidecar):
        try:
            assert isinstance(find_transcript(image, gt), (str, type(None)))
        except InputFileError as e:
            assert str(gt or sidecar) in str(e)


@FAST
@given(data=st.binary(max_size=4096))
def test_any_bytes_read_as_a_result_or_an_input_file_error(tmp_path, data):
    read_every_way(tmp_path, data)


@FAST
@given(name=st.sampled_from(sorted(SEEDS)), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8),
       cut=st.floats(0.05, 1), insert=st.binary(max_size=16))
def test_mutated_valid_files_read_as_a_result_or_an_input_file_error(tmp_path, name, edits, cut, insert):
    data = bytearray(SEEDS[name])
    for where, value in edits:  # bytes overwritten, most often in the header where the damage matters
        data[min(int(where ** 3 * len(data)), len(data) - 1)] = value
    at = int(cut * len(data))
    read_every_way(tmp_path, bytes(data[:at] + insert + data[at:]) if insert else bytes(data[:at]))


def test_every_seed_reads(tmp_path):
    # the mutations start from files that read: a seed that did not would test nothing
    for name, data in SEEDS.items():
        path = tmp_path / name
        path.write_bytes(data)
        if name.startswith("gt."):
            assert read_transcripts(tmp_path / "gt.tsv") if name == "gt.tsv" else find_transcript(path, path)
            continue
        image = read_image(path)
        assert image.shape[:2] == (SEED_SHAPE[::-1] if name == "rotated.jpg" else SEED_SHAPE), name
        assert read_mask(path).shape == image.shape[:2] or name == "rotated.jpg"


# arbitrary masks: any dtype, shape and values, most of them of the image's shape
IMAGE, _ = stroke_over(render_line("Hold 42", size=20))
any_mask = st.one_of(
    hnp.arrays(hnp.scalar_dtypes(), st.just(IMAGE.shape[:2])),
    hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, max_side=48)),
    hnp.arrays(st.sampled_from([np.float32, np.float64]), st.just(IMAGE.shape[:2]),
               elements=st.sampled_from([0.0, 1.0, -1.0, np.nan, np.inf, 1e300])),
)


@pytest.fixture(scope="module")
def inpainters():
    return [build_inpainter(name) for name in ("pconv", "telea", "ns", "none")]


@SLOW
@given(mask=any_mask)
def test_an_inpainter_given_any_mask_fills_it_or_refuses_it(inpainters, mask):
    for inpainter in inpainters:
        try:
            restored = inpainter(IMAGE, mask)
        except InputFileError as e:
            assert "mask" in str(e)
            continue
        hole = mask.astype(bool)
        assert restored.dtype == np.uint8 and restored.shape == IMAGE.shape
        assert np.array_equal(restored[~hole], IMAGE[~hole])  # only the hole changes


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
@SLOW
@given(mask=any_mask)
def test_the_pipeline_given_any_mask_restores_or_refuses_it(mask):
    pipeline = _pipeline()
    try:
        restoration = pipeline.restore(IMAGE, mask)
    except InputFileError as e:
        assert "mask" in str(e) and ("give a bool" in str(e))
        return
    hole = as_mask(mask, IMAGE.shape[:2])
    assert np.array_equal(restoration.mask, hole) and restoration.detector == "given mask"
    assert np.array_equal(restoration.restored[~hole], IMAGE[~hole])


_PIPELINES = []


def _pipeline():
    from ocr_restore.pipeline import Pipeline

    if not _PIPELINES:  # built once: hypothesis runs the test body many times
        _PIPELINES.append(Pipeline("classical", "pconv"))
    return _PIPELINES[0]


# regression tests: inputs the fuzzers found


def test_found_a_transcript_that_is_not_utf8(tmp_path):
    # atheris, first minute: any binary file as a TSV or a sidecar raised UnicodeDecodeError
    (tmp_path / "gt.tsv").write_bytes(b"a.png\tna\xefve\n")
    (tmp_path / "a.png").write_bytes(SEEDS["RGB.png"])
    (tmp_path / "a.gt.txt").write_bytes(SEEDS["RGB.png"])
    with pytest.raises(InputFileError, match=r"gt\.tsv: not UTF-8 text \(byte 0xef at offset 8\); save the transcript as UTF-8"):
        read_transcripts(tmp_path / "gt.tsv")
    with pytest.raises(InputFileError, match=r"a\.gt\.txt: not UTF-8 text"):
        find_transcript(tmp_path / "a.png")
    with pytest.raises(InputFileError, match=r"a\.gt\.txt: not UTF-8 text"):
        read_transcripts(tmp_path)  # a folder of sidecars


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
def test_found_a_mask_of_three_channels_or_of_values_past_255():
    # Hypothesis: an (H, W, 3) mask reached the em estimate and raised IndexError; a uint16 mask of 256s
    # was holes to the inpainter but no holes to the em estimate, and 0 in the written mask (256 as uint8)
    pipeline = _pipeline()
    stroke = IMAGE[..., 0] != IMAGE[..., 2]  # the red stroke
    with pytest.raises(InputFileError, match=r"the mask's shape is \(\d+, \d+, 3\) but the image is \d+x\d+: "
                                             r"give a bool array of shape \(\d+, \d+\), True = occluded"):
        pipeline.restore(IMAGE, np.dstack([stroke] * 3))
    restoration = pipeline.restore(IMAGE, stroke.astype(np.uint16) * 256)
    assert restoration.mask.dtype == bool and np.array_equal(restoration.mask, stroke)
