"""Detector training: loss, deterministic data, exact resume after Ctrl-C, export; and the evaluation table."""

import csv
import signal

import cv2
import numpy as np
import pytest
import torch

from ocr_restore.data import SyntheticCrops
from ocr_restore.detect import ClassicalDetector, Detection, Detector, build_detector
from ocr_restore.files import write_image
from ocr_restore.train import detector as training
from ocr_restore.nn.seg_unet import load_seg_unet
from ocr_restore.train.detector import (PAPER_MARGIN, DetectorCrops, detector_loss, detector_target, evaluate_detector,
                                        false_positives_on_real, train_detector)

RUN = dict(steps=4, batch_size=2, lr=1e-2, config="tiny", seed=3, val_every=2, ckpt_every=2, crop=(32, 48), val_size=4)


def test_loss_is_lowest_for_the_truth():
    target = torch.zeros(2, 2, 8, 8)
    target[:, 0, 2:5, 2:6] = 1
    confident = (target * 2 - 1) * 20  # logits that agree with the target
    assert detector_loss(confident, target) < 1e-3
    unsure = torch.zeros_like(target)
    assert detector_loss(-confident, target) > detector_loss(unsure, target) > detector_loss(confident, target)


def test_missing_occluder_pixels_cost_more_than_with_bce_alone():
    target = torch.zeros(1, 2, 16, 16)
    target[:, :, :2] = 1  # a small occluder, paper-coloured: plain BCE would rather miss it
    silent = torch.full_like(target, -4.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(silent, target) * 2  # both maps
    assert detector_loss(silent, target) > bce + 1.8  # each Dice term is close to 1 when every pixel is missed


def test_paper_shapes_are_learnt_only_where_they_erased_ink():
    paper = torch.zeros(1, 40, 40)
    paper[:, 5:35, 5:35] = 1  # an erasure over two glyph strokes' worth of paper
    hole = torch.zeros(1, 40, 40)
    hole[:, 20, 12] = 1  # the one ink pixel it erased
    hole[:, 0, 0] = 1  # another shape's pixel, outside the erasure
    target = detector_target(hole, paper)
    assert target.shape == (2, 40, 40) and torch.equal(target[0], hole[0])
    visible = torch.zeros(40, 40)
    visible[20 - PAPER_MARGIN:21 + PAPER_MARGIN, 12 - PAPER_MARGIN:13 + PAPER_MARGIN] = 1
    assert torch.equal(target[1], visible)
    assert not detector_target(torch.zeros(2, 1, 40, 40), paper.expand(2, 1, 40, 40)).any()  # a batch; nothing erased


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    first = train_detector(tmp_path / "first", **RUN)
    tuned = train_detector(tmp_path / "tuned", **{**RUN, "steps": 2, "lr": 0.0, "config": "default"}, init=first)
    before, after = load_seg_unet(first).state_dict(), load_seg_unet(tuned).state_dict()
    assert load_seg_unet(tuned).config == load_seg_unet(first).config  # the file's config, not --config
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "tracked" not in k)


def test_crops_are_a_function_of_their_index():
    crops = DetectorCrops(SyntheticCrops(crop=(32, 48)), seed=1, clean_share=0.5)
    first, again = crops[5], crops[5]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(crops[5][0], crops[6][0])
    items = [crops[i] for i in range(40)]
    clean = [target for _, target in items if not target.any()]
    assert 8 <= len(clean) <= 32  # about half the items are clean, with empty targets
    assert all(x.shape == (3, 32, 48) and target.shape == (2, 32, 48) for x, target in items)


class Oracle(torch.nn.Module):
    """Reads its answer off the input: logits +-10 from channels 0 (occluder) and 1 (paper)."""

    def forward(self, x):
        return (x[:, :2] * 2 - 1) * 10


def test_validate_counts_pixels():
    hole = (torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    paper = hole * (torch.arange(16) < 8).float()  # the left half of the hole is paper-coloured
    val = {"hole": hole, "paper_hole": paper, "clean": torch.zeros(6, 3, 16, 16)}
    val["occluded"] = torch.cat([hole, paper, hole], 1)
    metrics = training.validate(Oracle(), val, torch.device("cpu"), batch_size=4)
    assert metrics["iou"] == metrics["recall"] == metrics["precision"] == metrics["paper_iou"] == 1.0
    assert metrics["fp_clean_px"] == 0.0

    val["occluded"] = torch.cat([torch.ones_like(hole), torch.zeros_like(hole), hole], 1)  # flags everything
    val["clean"] = torch.ones(6, 3, 16, 16)
    metrics = training.validate(Oracle(), val, torch.device("cpu"))
    assert metrics["recall"] == 1.0 and metrics["fp_clean_px"] == 1.0
    assert metrics["precision"] == pytest.approx(hole.mean().item()) == metrics["iou"]
    assert metrics["paper_iou"] == 0.0


def _state(path):
    return torch.load(path / "last.pt", weights_only=True)


def test_resume_after_interrupt_is_bit_identical(tmp_path, monkeypatch):
    straight = train_detector(tmp_path / "straight", **RUN)
    assert straight.name == "detector.safetensors" and straight.exists()
    build_detector("model", straight)  # the exported weights load as a detector

    calls = {"n": 0}

    def interrupted_loss(logits, target):
        calls["n"] += torch.is_grad_enabled()  # training steps only, not validation
        # Ctrl-C in the middle of step 3: the step finishes, is saved, and the run stops
        if calls["n"] == 3 and torch.is_grad_enabled():
            signal.raise_signal(signal.SIGINT)
        return detector_loss(logits, target)

    monkeypatch.setattr(training, "detector_loss", interrupted_loss)
    with pytest.raises(KeyboardInterrupt):
        train_detector(tmp_path / "resumed", **RUN)
    assert _state(tmp_path / "resumed")["step"] == 3
    monkeypatch.setattr(training, "detector_loss", detector_loss)
    train_detector(tmp_path / "resumed", **RUN)

    a, b = _state(tmp_path / "straight"), _state(tmp_path / "resumed")
    assert a["step"] == b["step"] == 4
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    with open(tmp_path / "resumed" / "log.csv") as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["2", "4"]


@pytest.mark.parametrize("change", [{"lr": 1e-3}, {"scale_jitter": 0.2}])
def test_resume_refuses_another_run(tmp_path, change):
    train_detector(tmp_path, **{**RUN, "steps": 2})
    with pytest.raises(ValueError, match="another run"):
        train_detector(tmp_path, **{**RUN, **change})


def test_ship_writes_the_pipeline_default(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "DEFAULT_WEIGHTS", tmp_path / "detector.safetensors")
    shipped = train_detector(tmp_path / "run", **{**RUN, "steps": 2}, ship=True)
    assert shipped == tmp_path / "detector.safetensors"
    trained = build_detector("model", tmp_path / "run" / "detector.safetensors")
    assert build_detector("model", shipped).model.config == trained.model.config


class KnowingDetector(Detector):
    """Answers from the occlusion that made the image (remembered by `remembering`), to check the bookkeeping."""

    name = "knowing"

    def __init__(self, made: dict, answer):
        super().__init__()
        self.made, self.answer = made, answer

    def __call__(self, image):
        occlusion = self.made.get(image.tobytes())
        mask = self.answer(occlusion) if occlusion is not None else np.zeros(image.shape[:2], bool)
        return Detection(mask, np.zeros_like(mask), mask.astype(np.float32))


@pytest.fixture
def made(monkeypatch) -> dict:
    """The occlusions the evaluation makes, by image bytes."""
    made = {}
    real_occlude = training.occlude

    def remembering_occlude(sample, rng, coverage):
        occlusion = real_occlude(sample, rng, coverage)
        occlusion.clean = sample.image
        made[occlusion.image.tobytes()] = occlusion
        return occlusion

    monkeypatch.setattr(training, "occlude", remembering_occlude)
    return made


def _overall(table):
    return table[(table.kind == "all") & (table.group == "all")].iloc[0]


def test_evaluation_of_a_perfect_detector(made):
    table = evaluate_detector(KnowingDetector(made, lambda o: o.mask), kinds=("docs", "scene"), n=2, seed=0)
    assert (table.iou.dropna() == 1).all() and (table.recall.dropna() == 1).all()
    overall = _overall(table)
    assert overall.fp_clean == 0 and overall.images == 4 and overall.ms >= 0
    assert set(table.kind) == {"all", "docs", "scene"} and {"all", "shape", "colour", "style", "change", "part"} == set(table.group)


def test_evaluation_tells_recall_by_how_much_a_pixel_changed(made):
    changed_a_lot = lambda o: np.abs(o.image.astype(int) - o.clean).max(-1) > 64
    table = evaluate_detector(KnowingDetector(made, changed_a_lot), kinds=("docs",), n=3, seed=0)
    bands = table[(table.kind == "all") & (table.group == "change")].set_index("value")
    assert list(bands.index) == ["001-008", "009-016", "017-032", "033-064", "065-255"]
    assert bands.loc["065-255", "recall"] == 1 and (bands.recall.iloc[:-1] == 0).all()
    assert bands.iou.isna().all() and bands.precision.isna().all()  # a false positive changed no pixel
    overall = _overall(table)
    # every pixel of the truth in one band; the overall recall is the bands' weighted by their pixels
    assert bands.pixels.sum() == overall.pixels
    assert np.isclose(overall.recall, bands.pixels["065-255"] / overall.pixels)


def test_evaluation_tells_recall_on_erasures_edges_and_the_rest(made):
    erasers = lambda o: np.isin(o.shape_ids, [k for k, s in enumerate(o.shapes, 1) if s.colour in ("paper", "white")])
    core = lambda o: cv2.erode(o.mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)  # 3 px in from the edge
    for flags, recall in ((erasers, {"erasure": 1, "edge": 0, "interior": 0}),
                          (lambda o: core(o) & ~erasers(o), {"erasure": 0, "edge": 0})):
        table = evaluate_detector(KnowingDetector(made, flags), kinds=("docs", "receipts"), n=4, seed=3)
        parts = table[(table.kind == "all") & (table.group == "part")].set_index("value")
        assert list(parts.index) == ["edge", "erasure", "interior"] and (parts.pixels > 0).all()
        assert parts.pixels.sum() == _overall(table).pixels  # each pixel of the truth in one part
        assert parts.recall.to_dict() | recall == parts.recall.to_dict()
    assert 0 < parts.recall["interior"] < 1  # the core of the other shapes misses their inner edge only


def test_evaluation_charges_shapes_by_colour(made):
    black = lambda o: np.isin(o.shape_ids, [k for k, s in enumerate(o.shapes, 1) if s.colour == "black"])
    black_only = KnowingDetector(made, black)
    table = evaluate_detector(black_only, kinds=("docs",), n=4, seed=0)
    colours = table[(table.kind == "all") & (table.group == "colour")].set_index("value")
    assert "black" in colours.index and len(colours) > 1
    assert colours.loc["black", "recall"] == 1 and (colours.drop("black").recall == 0).all()
    assert 0 < _overall(table).recall < 1


def test_evaluation_of_empty_and_full_detectors(made):
    table = evaluate_detector(KnowingDetector(made, lambda o: np.zeros_like(o.mask)), kinds=("docs",), n=2, seed=0)
    assert (table.recall.dropna() == 0).all() and (table.iou.dropna() == 0).all()

    class FlagEverything(Detector):
        def probabilities(self, image):
            return np.ones(image.shape[:2], np.float32), np.zeros(image.shape[:2], np.float32)

    overall = _overall(evaluate_detector(FlagEverything(), kinds=("docs",), n=2, seed=0))
    assert overall.recall == 1.0 and overall.precision < 0.9
    assert overall.fp_clean > 1  # every pixel of the clean images, more than their ink


def test_evaluation_runs_a_real_detector():
    table = evaluate_detector(ClassicalDetector(), kinds=("receipts",), n=2, seed=1)
    overall = _overall(table)
    assert 0 <= overall.iou <= 1 and overall.ms > 0 and overall.fp_clean >= 0


def test_false_positives_on_real_images_count_per_ink_pixel(tmp_path):
    for name, ink in (("dark-on-light.png", (0, 0, 0)), ("light-on-dark.png", (255, 255, 255))):
        image = np.full((50, 100, 3), 255 - np.array(ink), np.uint8)
        image[10:20, 10:30] = ink  # 200 ink pixels, on either side of the Otsu threshold
        write_image(tmp_path / name, image)

    class FlagFirstPixels(Detector):
        def __init__(self, pixels):
            super().__init__()
            self.pixels = pixels

        def probabilities(self, image):
            occluder = np.zeros(image.shape[:2], np.float32)
            occluder.flat[: self.pixels] = 1
            return occluder, np.zeros_like(occluder)

    found = false_positives_on_real(FlagFirstPixels(50), tmp_path)
    assert found == {"set": str(tmp_path), "images": 2, "fp_per_ink": 0.25, "images_flagged": 1.0}
    assert false_positives_on_real(FlagFirstPixels(0), tmp_path)["images_flagged"] == 0
