"""Training the inpainter: runs on real synthetic crops, resumes bit-identically after a kill or Ctrl-C."""

import csv
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from ocr_restore.errors import ModelError
from ocr_restore.nn import features
from ocr_restore.nn.losses import LossWeights
from ocr_restore.nn.pconv_unet import load_pconv
from ocr_restore.train import inpainter
from ocr_restore.train.inpainter import InpainterTraining, StepBatches
from ocr_restore.train.loop import Phase, phase_at

TINY = dict(steps_phase1=4, steps_phase2=2, batch_size=2, config="tiny", val_every=3, val_size=4, ckpt_every=2,
            num_workers=0, crop=(32, 64), seed=7)


def train_inpainter(out_dir, **changes):
    return inpainter.train_inpainter(out_dir, InpainterTraining(**changes))


def weights(out_dir):
    return load_file(str(out_dir / "pconv.safetensors"))


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def fail_at(monkeypatch, step_to_fail: int, action):
    """Make fetching batch `step_to_fail` run `action` (a crash or a Ctrl-C), once."""
    fetch = StepBatches.__getitem__
    fired = []

    def patched(self, step):
        if step == step_to_fail and not fired:
            fired.append(step)
            action()
        return fetch(self, step)

    monkeypatch.setattr(StepBatches, "__getitem__", patched)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    metrics = train_inpainter(out, **TINY)
    return out, metrics


def test_a_run_leaves_weights_log_samples_and_a_checkpoint(uninterrupted):
    out, metrics = uninterrupted
    assert {"loss", "hole_psnr", "ssim", "perceptual", "style_out", "tv", "coverage"} <= set(metrics)
    model = load_pconv(out / "pconv.safetensors")
    assert model.config.widths == (8, 16, 16)
    with (out / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [3, 6]  # every val_every steps and at the end
    assert rows[1]["phase"].startswith("2") and float(rows[1]["lr"]) == 5e-5
    assert (out / "samples" / "step_000006.png").is_file()
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step_000003.safetensors", "step_000006.safetensors"]
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 6


def test_resume_after_a_kill_is_bit_identical(uninterrupted, tmp_path, monkeypatch):
    def crash():
        raise RuntimeError("killed")

    fail_at(monkeypatch, 3, crash)  # steps 0-2 done, last checkpoint after step 2: step 2 runs twice
    with pytest.raises(RuntimeError, match="killed"):
        train_inpainter(tmp_path, **TINY)
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 2
    train_inpainter(tmp_path, **TINY)
    assert_same_weights(weights(tmp_path), weights(uninterrupted[0]))
    with (tmp_path / "log.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [3, 6]  # the killed run's rows are not doubled


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_kill_saves_and_resumes_bit_identical(uninterrupted, tmp_path, monkeypatch, signum):
    fail_at(monkeypatch, 4, lambda: os.kill(os.getpid(), signum))  # during phase 2's first step
    with pytest.raises(KeyboardInterrupt):
        train_inpainter(tmp_path, **TINY)
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 5  # the current step finished first
    train_inpainter(tmp_path, **TINY)
    assert_same_weights(weights(tmp_path), weights(uninterrupted[0]))


def test_batches_do_not_depend_on_workers(uninterrupted, tmp_path):
    train_inpainter(tmp_path, **{**TINY, "num_workers": 1})
    assert_same_weights(weights(tmp_path), weights(uninterrupted[0]))


def test_phase_two_freezes_the_encoder_batchnorm(tmp_path):
    train_inpainter(tmp_path / "a", **{**TINY, "steps_phase2": 0})
    train_inpainter(tmp_path / "b", **TINY)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    encoder_bn = [k for k in a if k.startswith("encoder.") and ".bn." in k]
    decoder_bn = [k for k in a if k.startswith("decoder.") and ".bn." in k and "running_mean" in k]
    assert encoder_bn and all(torch.equal(a[k], b[k]) for k in encoder_bn)
    assert any(not torch.equal(a[k], b[k]) for k in decoder_bn)


def test_fine_tuning_starts_from_the_given_weights(uninterrupted, tmp_path):
    out, _ = uninterrupted
    # with phase 2 only (encoder BatchNorm frozen) and lr 0 every weight stays; decoder BatchNorm statistics move
    train_inpainter(tmp_path, **{**TINY, "steps_phase1": 0, "config": "default"}, lr2=0.0, scale_jitter=0.4,
                    init=str(out / "pconv.safetensors"))
    before, after = weights(out), weights(tmp_path)
    assert load_pconv(tmp_path / "pconv.safetensors").config == load_pconv(out / "pconv.safetensors").config
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "tracked" not in k)


def test_trains_on_renders_and_a_folder_of_clean_images_in_shares(tmp_path):
    from PIL import Image

    from ocr_restore.data.dataset import MixedCrops, crop_source

    from .conftest import render_line

    folder = tmp_path / "clean"
    folder.mkdir()
    for i, text in enumerate(["Partial convolutions", "fill the holes 42", "in text images", "at any size"]):
        Image.fromarray(render_line(text, size=30)).save(folder / f"{i}.png")

    def batch_5():
        sources = [crop_source(spec, crop=(32, 64)) for spec in ("synthetic:0.5", f"{folder}:0.5")]
        return StepBatches(MixedCrops(*zip(*sources)), 3, seed=0)[5]

    first, again = batch_5(), batch_5()
    assert first["clean"].shape == (3, 3, 32, 64) and first["hole"].sum() > 0
    assert all(torch.equal(first[k], again[k]) for k in first), "a step's batch must not depend on the run"
    metrics = train_inpainter(tmp_path / "run", **{**TINY, "data": (f"{folder}:1",), "steps_phase1": 2, "steps_phase2": 0})
    assert metrics["hole_psnr"] > 0


def test_the_glyph_model_learns_ink_coverage_on_one_batch(tmp_path):
    """Overfit one batch: the coverage term and the hole error fall, so the loss and the model agree."""
    from ocr_restore.data.dataset import SyntheticCrops
    from ocr_restore.nn.features import load_feature_net
    from ocr_restore.nn.losses import InpaintingLoss
    from ocr_restore.nn.pconv_unet import CONFIGS, PConvUNet
    from ocr_restore.train.inpainter import loss_of, model_inputs

    torch.manual_seed(0)
    model = PConvUNet(CONFIGS["tiny"])
    loss_fn = InpaintingLoss(load_feature_net(), LossWeights(style=1.2))
    crops = SyntheticCrops(crop=(32, 64))
    image, known, target = model_inputs(StepBatches(crops, 8, 0)[0], "cpu")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(60):
        _, loss, terms = loss_of(model, loss_fn, image, known, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((terms["coverage"].item(), terms["hole"].item()))
    assert history[-1][0] < 0.6 * history[0][0] and history[-1][1] < 0.8 * history[0][1], history[::10]


def test_phases():
    phases = [Phase("1", 3, 0.1), Phase("2", 2, 0.01)]
    assert [phase_at(phases, i).name for i in range(5)] == ["1", "1", "1", "2", "2"]
    with pytest.raises(IndexError):
        phase_at(phases, 5)


def test_no_feature_network_stops_training_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "DEFAULT_TEXT_FEATURES", tmp_path / "absent.safetensors")
    with pytest.raises(ModelError, match="--perceptual none"):
        train_inpainter(tmp_path / "run", **TINY)
    assert not (tmp_path / "run" / "last.pt").exists()
    metrics = train_inpainter(tmp_path / "run", **{**TINY, "perceptual": "none", "steps_phase1": 1, "steps_phase2": 0})
    assert "perceptual" not in metrics


def test_a_checkpoint_of_another_run_is_not_resumed(uninterrupted, tmp_path):
    train_inpainter(tmp_path, **{**TINY, "steps_phase1": 1, "steps_phase2": 0})
    with pytest.raises(ModelError, match="differs in seed"):
        train_inpainter(tmp_path, **{**TINY, "seed": 8})
    with pytest.raises(ModelError, match="differs in loss_weights"):
        train_inpainter(tmp_path, **TINY, loss_weights=LossWeights(style=12.0))


def test_the_cli_passes_its_options_to_the_training_config(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ocr_restore.cli import main

    seen = {}
    monkeypatch.setattr(inpainter, "train_inpainter", lambda out_dir, cfg: seen.update(cfg=cfg))
    result = CliRunner().invoke(main, ["train", "inpainter", "-o", str(tmp_path), "--style-weight", "12",
                                       "--data", "synthetic:0.5", "--data", f"{tmp_path}:0.5", "--ckpt-every", "100"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert cfg.loss_weights == LossWeights(style=12.0)
    assert cfg.data == ("synthetic:0.5", f"{tmp_path}:0.5") and cfg.ckpt_every == 100


def test_a_slow_run_checkpoints_by_the_clock_too(tmp_path, monkeypatch):
    from ocr_restore.train import loop

    monkeypatch.setattr(loop, "CKPT_SECONDS", 0.0)  # every step is "ten minutes" after the last checkpoint
    saved = []
    monkeypatch.setattr(inpainter, "save_checkpoint", lambda path, state: saved.append(state["step"]))
    train_inpainter(tmp_path, **{**TINY, "ckpt_every": 1000})
    assert saved == [1, 2, 3, 4, 5, 6]
