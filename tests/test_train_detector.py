"""Detector training: loss, deterministic data, exact resume after Ctrl-C, export."""

import csv
import signal

import pytest
import torch

from ocr_restore.data import SyntheticCrops
from ocr_restore.detect import build_detector
from ocr_restore.errors import ModelError
from ocr_restore.nn import seg_unet
from ocr_restore.nn.seg_unet import load_seg_unet
from ocr_restore.train import detector as training
from ocr_restore.train.detector import PAPER_MARGIN, DetectorCrops, DetectorTraining, detector_loss, detector_target
from ocr_restore.train.loop import ship_weights

RUN = dict(steps=4, batch_size=2, lr=1e-2, config="tiny", seed=3, val_every=2, ckpt_every=2, crop=(32, 48), val_size=4)


def train_detector(out_dir, **changes):
    return training.train_detector(out_dir, DetectorTraining(**changes))


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
    tuned = train_detector(tmp_path / "tuned", **{**RUN, "steps": 2, "lr": 0.0, "config": "default"}, init=str(first))
    before, after = load_seg_unet(first).state_dict(), load_seg_unet(tuned).state_dict()
    assert load_seg_unet(tuned).config == load_seg_unet(first).config  # the file's config, not --config
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "tracked" not in k)


def test_fine_tuning_into_a_slimmer_config_starts_from_the_narrowed_weights(tmp_path, monkeypatch):
    monkeypatch.setitem(seg_unet.CONFIGS, "tinier", seg_unet.SegUNetConfig(widths=(2, 4, 8)))
    first = train_detector(tmp_path / "first", **RUN)
    slim = train_detector(tmp_path / "slim", **{**RUN, "steps": 2, "lr": 0.0, "config": "tinier"}, init=str(first))
    expected, got = seg_unet.narrowed(load_seg_unet(first), (2, 4, 8)).state_dict(), load_seg_unet(slim).state_dict()
    assert load_seg_unet(slim).config.widths == (2, 4, 8)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected if "running" not in k and "tracked" not in k)


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
    return torch.load(path / "last.pt", weights_only=False)  # our own checkpoints hold RNG states


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
    with pytest.raises(ModelError, match="another run"):
        train_detector(tmp_path, **{**RUN, **change})


def test_ship_copies_a_runs_weights_over_the_shipped_ones(tmp_path):
    trained = train_detector(tmp_path / "run", **{**RUN, "steps": 2})
    shipped = ship_weights(trained, "detector.safetensors", to=tmp_path / "models")
    assert shipped == tmp_path / "models" / "detector.safetensors" and shipped.read_bytes() == trained.read_bytes()
    assert build_detector("model", shipped).model.config == build_detector("model", trained).model.config
    (tmp_path / "broken.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="broken.safetensors"):
        ship_weights(tmp_path / "broken.safetensors", "detector.safetensors", to=tmp_path / "models")
    assert shipped.read_bytes() == trained.read_bytes(), "a bad file never replaces the shipped one"


def test_trains_on_renders_beside_a_folder_of_real_images(tmp_path):
    from PIL import Image

    from .conftest import render_line

    folder = tmp_path / "real"
    folder.mkdir()
    for i, text in enumerate(["Receipt total 9.99", "Partial convolution", "Thank you", "Cash 20.00"]):
        Image.fromarray(render_line(text, size=20)).save(folder / f"{i}.png")
    weights = train_detector(tmp_path / "run", **{**RUN, "steps": 2, "data": ("synthetic:0.5", f"{folder}:0.5")})
    assert build_detector("model", weights)




@pytest.mark.parametrize("environment", [{}, {"OMP_NUM_THREADS": "2"}])
def test_the_command_leaves_the_loader_processes_their_cores(tmp_path, monkeypatch, environment):
    from click.testing import CliRunner

    from ocr_restore.cli import main

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)))
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(training, "train_detector", lambda out_dir, cfg: calls.append(cfg.num_workers))
    result = CliRunner().invoke(main, ["train", "detector", "-o", str(tmp_path), "--workers", "3"])
    assert result.exit_code == 0, result.output
    # four cores, three loaders: one thread for the model; a thread count the user set is theirs
    assert calls == ([3] if environment else [1, 3])
