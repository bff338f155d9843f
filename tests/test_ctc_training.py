"""Issue 21 part 2: text lines with transcripts, the pretrained recognizer's CTC term and conv features in the
inpainter's training; runs with the CTC term resume bit-identically, and older checkpoints still resume."""

import csv
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ocr_restore.data.dataset import (LabelledLines, MixedCrops, RenderedLines, SyntheticCrops, cut_line, held_out,
                                      line_window)
from ocr_restore.data.render import render
from ocr_restore.errors import ModelError
from ocr_restore.nn.losses import LossWeights
from ocr_restore.train import inpainter
from ocr_restore.train.inpainter import InpainterTraining, StepBatches

from .conftest import render_line
from .test_train_inpainter import TINY, assert_same_weights, fail_at, weights

LINE = (32, 128)  # line crops of the tests: small, so the recognizer is quick
CTC = dict(loss_weights=LossWeights(ctc=0.5), ctc_batch=2, ctc_crop=LINE)
# a run's identity as it was before the CTC fields existed: a checkpoint of runs/pconv-glyph7 holds these keys
OLD_IDENTITY = {"config", "data", "perceptual", "loss_weights", "batch_size", "crop", "scale_jitter", "tight_share",
                "seed", "init"}
OLD_LOSS_WEIGHTS = {"valid", "hole", "perceptual", "style", "tv", "coverage", "ink"}


def needs_recognizer():
    pytest.importorskip("easyocr_en_models")


def same_items(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


# ---------------------------------------------------------------- line sources


def test_rendered_line_windows_hold_exactly_the_characters_of_their_transcript():
    rng = np.random.default_rng(3)
    cuts = 0
    while cuts < 25:
        sample = render(["docs", "receipts", "scene"][cuts % 3], rng, size=24)
        cut = line_window(sample, rng, LINE)
        if cut is None:
            continue
        cuts += 1
        assert cut.bottom - cut.top <= LINE[0] and cut.right - cut.left <= LINE[1]
        # the transcript is that line's text between the first and last character cut
        chars = [c for c in sample.text if not c.isspace()]
        assert [c for c in cut.text if not c.isspace()] == chars[cut.first:cut.end]
        assert cut.text == cut.text.strip() and "\n" not in cut.text and cut.text in sample.text
        window = sample.char_ink[cut.top:cut.bottom, cut.left:cut.right]
        labels = set(np.unique(window).tolist()) - {0}
        # no other character's ink is in view, and each character cut has all its ink in view
        assert labels <= set(range(cut.first + 1, cut.end + 1)), (sample.text, cut)
        for label in range(cut.first + 1, cut.end + 1):
            assert (window == label).sum() == (sample.char_ink == label).sum() > 0


def test_cut_lines_keep_boxes_and_ink_in_the_padded_crop():
    rng = np.random.default_rng(4)
    for _ in range(10):
        line = None
        while line is None:
            line = cut_line(render("docs", rng, size=24), rng, LINE)
        assert line.image.shape == line.page.shape == line.background.shape == (*LINE, 3)
        assert line.char_ink.shape == LINE and len(line.char_boxes) == sum(not c.isspace() for c in line.text)
        for i, (x0, y0, x1, y1) in enumerate(line.char_boxes):
            ys, xs = np.nonzero(line.char_ink == i + 1)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
        assert line.char_boxes[:, 0].min() <= 0.5 * line.text_height  # the text starts near the left edge


def test_line_items_are_the_same_for_the_same_rng_and_keep_the_exact_hole():
    source = RenderedLines(crop=LINE)
    first = [source.sample(np.random.default_rng(11)) for _ in range(2)]
    assert same_items(*first)
    item = first[0]
    assert isinstance(item["text"], str) and item["text"]
    assert item["clean"].shape == item["occluded"].shape == (3, *LINE)
    assert item["hole"].shape == item["paper_hole"].shape == (1, *LINE)
    assert torch.equal((item["clean"] != item["occluded"]).any(0), item["hole"][0].bool())


def test_charset_keeps_lines_to_the_recognizers_alphabet():
    source = RenderedLines(crop=LINE, charset="abcdefghijklmnopqrstuvwxyz ")
    rng = np.random.default_rng(0)
    for _ in range(3):
        assert set(source.sample(rng)["text"]) <= set("abcdefghijklmnopqrstuvwxyz ")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A folder of 12 real-looking line images, each showing its own name; one too long for the crop."""
    folder = tmp_path_factory.mktemp("lines")
    rows = []
    for i in range(11):
        text = f"Line {i}"
        Image.fromarray(render_line(text, size=30)).save(folder / f"line{i}.png")
        rows.append(f"line{i}.png\t{text}")
    long = "A line far too long for the width of a line crop"
    Image.fromarray(render_line(long, size=30)).save(folder / "long.png")
    rows.append(f"long.png\t{long}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def test_labelled_lines_never_show_held_out_images_nor_lines_too_long(labelled):
    source = LabelledLines(labelled, crop=LINE)
    names = {p.name for p, _ in source.lines}
    assert {p.name for p in source.held_out_paths} == {f"line{i}.png" for i in range(11) if held_out(f"line{i}.png")}
    assert names and not names & {p.name for p in source.held_out_paths}
    rng = np.random.default_rng(0)
    items = [source.sample(rng) for _ in range(30)]
    texts = {item["text"] for item in items}
    allowed = {t for p, t in source.lines if p.name != "long.png"}
    assert texts <= allowed and len(texts) > 2
    for item in items[:5]:
        assert item["clean"].shape == (3, *LINE)
        assert torch.equal((item["clean"] != item["occluded"]).any(0), item["hole"][0].bool())
    again = [source.sample(np.random.default_rng(0)) for _ in range(2)]
    assert same_items(again[0], items[0])


def test_a_step_draws_its_line_batch_apart_and_the_same_every_time(labelled):
    crops = SyntheticCrops(crop=(32, 64))
    lines = MixedCrops([RenderedLines(crop=LINE), LabelledLines(labelled, crop=LINE)], [0.5, 0.5])
    with_lines = StepBatches(crops, 2, 5, lines, 3)
    batch, again = with_lines[7], with_lines[7]
    assert len(batch["ctc"]["text"]) == 3 and batch["ctc"]["clean"].shape == (3, 3, *LINE)
    assert same_items(batch["ctc"], again["ctc"])
    # the usual batch is the one a run without the CTC term draws
    plain = StepBatches(crops, 2, 5)[7]
    assert same_items({k: v for k, v in batch.items() if k != "ctc"}, plain)


# ---------------------------------------------------------------- identity and resume


def test_the_ctc_settings_count_in_a_runs_identity_only_when_the_term_is_on():
    off = InpainterTraining().identity()
    assert set(off) == OLD_IDENTITY and set(off["loss_weights"]) == OLD_LOSS_WEIGHTS
    assert InpainterTraining(ctc_batch=9, ctc_data=("x",)).identity() == off  # unused while the weight is 0
    on = InpainterTraining(**CTC).identity()
    assert set(on) == OLD_IDENTITY | set(InpainterTraining.CTC_FIELDS) and on["loss_weights"]["ctc"] == 0.5
    with pytest.raises(ValueError, match="ctc_batch"):
        InpainterTraining(loss_weights=LossWeights(ctc=1.0), ctc_batch=0)


def test_a_checkpoint_from_before_the_ctc_fields_resumes_without_the_recognizer(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ocr_restore.nn.recognizer", None)  # importing it fails: the run must not
    run = {**TINY, "steps_phase1": 1, "steps_phase2": 0, "val_every": 1}
    inpainter.train_inpainter(tmp_path, InpainterTraining(**run))
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=False)
    # exactly the keys an older version wrote (so this is the older format), then resumed for more steps
    assert set(checkpoint["run"]) == OLD_IDENTITY and set(checkpoint["run"]["loss_weights"]) == OLD_LOSS_WEIGHTS
    inpainter.train_inpainter(tmp_path, InpainterTraining(**{**run, "steps_phase1": 2}))
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 2


CTC_RUN = {**TINY, **CTC, "perceptual": "crnn"}


@pytest.fixture(scope="module")
def ctc_run(tmp_path_factory):
    needs_recognizer()
    out = tmp_path_factory.mktemp("ctc")
    return out, inpainter.train_inpainter(out, InpainterTraining(**CTC_RUN))


def test_a_run_with_the_ctc_term_logs_it(ctc_run):
    out, metrics = ctc_run
    assert {"ctc", "ctc_cer", "perceptual", "hole_psnr"} <= set(metrics) and 0 < metrics["ctc"] < 100
    with (out / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [3, 6]
    assert all(float(r["train_ctc"]) > 0 and float(r["val_ctc"]) > 0 for r in rows)
    assert (out / "samples" / "lines_000006.png").is_file()


def test_a_run_with_the_ctc_term_resumes_bit_identically(ctc_run, tmp_path, monkeypatch):
    def crash():
        raise RuntimeError("killed")

    fail_at(monkeypatch, 3, crash)
    with pytest.raises(RuntimeError, match="killed"):
        inpainter.train_inpainter(tmp_path, InpainterTraining(**CTC_RUN))
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 2
    inpainter.train_inpainter(tmp_path, InpainterTraining(**CTC_RUN))
    assert_same_weights(weights(tmp_path), weights(ctc_run[0]))
    with pytest.raises(ModelError, match="differs in ctc_batch"):
        inpainter.train_inpainter(tmp_path, InpainterTraining(**{**CTC_RUN, "ctc_batch": 3}))
    with pytest.raises(ModelError, match=r"differs in loss_weights\)"):  # the term off
        inpainter.train_inpainter(tmp_path, InpainterTraining(**{**CTC_RUN, "loss_weights": LossWeights()}))


def test_ctc_batches_do_not_depend_on_workers(ctc_run, tmp_path):
    inpainter.train_inpainter(tmp_path, InpainterTraining(**{**CTC_RUN, "num_workers": 1}))
    assert_same_weights(weights(tmp_path), weights(ctc_run[0]))


# ---------------------------------------------------------------- the recognizer in the loss


def test_the_ctc_term_alone_trains_the_inpainter_through_the_recognizer():
    """On one fixed batch of lines, a few steps on the CTC loss of the composite lower it: the gradient runs
    from the CTC loss through the recognizer, `prepare` and the composite into the U-Net."""
    needs_recognizer()
    from ocr_restore.nn.pconv_unet import CONFIGS, PConvUNet
    from ocr_restore.nn.recognizer import ALPHABET, load_recognizer

    torch.manual_seed(0)
    lines = inpainter.collate([RenderedLines(crop=LINE, charset=ALPHABET).sample(np.random.default_rng(2))
                               for _ in range(4)])
    model, recognizer = PConvUNet(CONFIGS["tiny"]), load_recognizer()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for _ in range(8):
        loss, _ = inpainter.ctc_of(model, recognizer, lines, "cpu")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert all(p.grad is None for p in recognizer.parameters()) and not recognizer.sequence.training  # frozen
    assert min(history[-3:]) < 0.9 * history[0], history


def test_perceptual_crnn_gives_three_feature_maps_of_decreasing_size():
    needs_recognizer()
    from ocr_restore.nn.losses import InpaintingLoss
    from ocr_restore.nn.recognizer import RecognizerFeatures

    recognizer, features = inpainter._recognizer_and_features(InpainterTraining(perceptual="crnn"), torch.device("cpu"))
    assert isinstance(features, RecognizerFeatures) and features.model is recognizer
    maps = features(torch.rand(2, 3, 64, 128))
    assert [tuple(m.shape[1:]) for m in maps] == [(32, 32, 64), (64, 16, 32), (128, 8, 32)]
    sizes = [m.shape[2] * m.shape[3] for m in maps]
    assert sizes[0] > sizes[1] > sizes[2]
    output = torch.rand(2, 3, 64, 128, requires_grad=True)
    _, terms = InpaintingLoss(features)(output, torch.rand(2, 3, 64, 128), (torch.rand(2, 1, 64, 128) > 0.2).float())
    terms["perceptual"].backward()
    assert torch.isfinite(terms["style_out"]) and output.grad.abs().sum() > 0


def test_case_folded_ctc_takes_either_case_for_a_letter():
    from ocr_restore.nn.recognizer import ALPHABET, ctc_loss

    upper = torch.full((1, 12, 97), -10.0)
    for t, c in zip((1, 3, 5, 7, 9), "HELLO"):  # the model reads HELLO in capitals, blanks between
        upper[0, t, ALPHABET.index(c) + 1] = 10.0
    upper[0, [0, 2, 4, 6, 8, 10, 11], 0] = 10.0
    assert ctc_loss(upper, ["hello"], fold_case=True) < 0.01 < ctc_loss(upper, ["hello"])
    assert torch.isclose(ctc_loss(upper, ["Hello"], fold_case=True), ctc_loss(upper, ["HELLO"], fold_case=True))
    assert ctc_loss(upper, ["HELLO"]) < 0.01


def test_the_cli_passes_the_ctc_options(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ocr_restore.cli import main

    seen = {}
    monkeypatch.setattr(inpainter, "train_inpainter", lambda out_dir, cfg: seen.update(cfg=cfg))
    result = CliRunner().invoke(main, ["train", "inpainter", "-o", str(tmp_path), "--perceptual", "crnn",
                                       "--ctc-weight", "0.2", "--ctc-batch", "3", "--ctc-data", "synthetic:0.5",
                                       "--ctc-data", f"{tmp_path}:0.5"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert cfg.perceptual == "crnn" and cfg.loss_weights == LossWeights(ctc=0.2) and cfg.ctc_batch == 3
    assert cfg.ctc_data == ("synthetic:0.5", f"{tmp_path}:0.5") and cfg.ctc_on
    result = CliRunner().invoke(main, ["train", "inpainter", "-o", str(tmp_path)])
    assert result.exit_code == 0 and not seen["cfg"].ctc_on and set(seen["cfg"].identity()) == OLD_IDENTITY
