"""SegUNet: shapes on any input size, save/load round trip, and that it learns stroke width, not colour."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from ocr_restore.errors import ModelError
from ocr_restore.nn.seg_unet import (CONFIGS, SegUNet, SegUNetConfig, fold_batchnorm, load_seg_unet, narrowed,
                                     save_seg_unet)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("size", [(16, 16), (37, 53), (24, 130)])
def test_forward_shape_any_size(name, size):
    torch.manual_seed(0)
    model = SegUNet(CONFIGS[name]).eval()
    x = torch.rand(2, 3, *size)
    y = model(x)
    assert y.shape == (2, CONFIGS[name].out_channels, *size)
    assert torch.isfinite(y).all()


def test_output_does_not_depend_on_batch_mates_in_eval():
    torch.manual_seed(0)
    model = SegUNet(CONFIGS["tiny"]).eval()
    x = torch.rand(3, 3, 40, 40)
    torch.testing.assert_close(model(x)[1:2], model(x[1:2]))


def test_default_size_fits_cpu_training():
    assert 300_000 <= SegUNet(CONFIGS["default"]).num_parameters() <= 1_000_000


def test_gradients_reach_every_parameter():
    model = SegUNet(CONFIGS["tiny"])
    model(torch.rand(2, 3, 20, 28)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SegUNet(SegUNetConfig(widths=(4, 6, 8)))
    model(torch.rand(2, 3, 16, 16))  # move the BatchNorm running statistics off their defaults
    path = tmp_path / "seg.safetensors"
    save_seg_unet(path, model, step="7")
    loaded = load_seg_unet(path)
    assert loaded.config == model.config and not loaded.training
    x = torch.rand(1, 3, 21, 19)
    torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)


def test_folded_batchnorm_computes_the_same_function():
    torch.manual_seed(0)
    model = SegUNet(SegUNetConfig(widths=(4, 6, 8)))
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # statistics far from 0 and 1
        norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.2, 3), norm.weight.data.uniform_(0.5, 2)
        norm.bias.data.uniform_(-1, 1)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert model.training, "the original is left as it was"
    x = torch.rand(2, 3, 21, 19)
    torch.testing.assert_close(folded(x), model.eval()(x), rtol=1e-5, atol=1e-5)


def test_load_rejects_another_model(tmp_path):
    from ocr_restore.nn.weights import save_weights

    model = SegUNet(CONFIGS["tiny"])
    path = tmp_path / "other.safetensors"
    save_weights(path, model, model.config, "pconv_unet")
    with pytest.raises(ModelError, match="expected 'seg_unet'"):
        load_seg_unet(path)


def test_config_survives_json_round_trip():
    config = SegUNetConfig(widths=[4, 8])
    assert config.widths == (4, 8) and config.depth == 2
    assert SegUNetConfig(**dataclasses.asdict(config)) == config


def _bars(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey images with thin (text-like, 2 px) and thick (marker-like, 8 px) bars of one random colour each.

    The target marks the thick bars only, so colour cannot decide.
    """
    images = torch.ones(n, 3, 32, 32)
    targets = torch.zeros(n, 1, 32, 32)
    for i in range(n):
        colour = torch.rand(3, 1, 1, generator=generator) * 0.6
        thin_row, thick_row = torch.randperm(4, generator=generator)[:2] * 8
        images[i, :, thin_row + 3 : thin_row + 5] = colour
        images[i, :, thick_row : thick_row + 8] = colour
        targets[i, :, thick_row : thick_row + 8] = 1
    return images, targets


def test_learns_stroke_width_not_colour():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = SegUNet(SegUNetConfig(widths=(8, 16, 16), out_channels=1))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        x, target = _bars(16, generator)
        loss = F.binary_cross_entropy_with_logits(model(x), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    x, target = _bars(32, generator)
    predicted = model.eval()(x) > 0
    iou = (predicted & (target > 0)).sum() / (predicted | (target > 0)).sum()
    assert iou > 0.9, f"IoU {iou:.3f}"


def _trained_like(model: SegUNet) -> SegUNet:
    """`model` with BatchNorm statistics and affines of a trained one, in eval mode."""
    for norm in model.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2)
            norm.weight.data.normal_()
            norm.bias.data.normal_()
    return model.eval()


@torch.no_grad()
def test_narrowing_keeps_what_the_dropped_channels_did_not_change():
    torch.manual_seed(0)
    model = _trained_like(SegUNet(SegUNetConfig(widths=(6, 8, 12))))
    widths = (3, 5, 12)
    # silence all but `width` channels of every convolution (scale and shift 0: after the ReLU they are 0), the
    # survivors not the first ones, so that a narrowing that kept the wrong channels or misaligned the skips shows
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    per_norm = [w for w in widths for _ in range(2)] + [w for w in reversed(widths[:-1]) for _ in range(2)]
    for norm, width in zip(norms, per_norm):
        silent = torch.randperm(norm.num_features)[: norm.num_features - width]
        norm.weight[silent] = 0
        norm.bias[silent] = 0
    slim = narrowed(model, widths).eval()
    assert slim.config.widths == widths and slim.num_parameters() < model.num_parameters()
    x = torch.rand(2, 3, 40, 56)
    torch.testing.assert_close(slim(x), model(x))
    assert narrowed(model, (6, 8, 12)).state_dict().keys() == model.state_dict().keys()


def test_a_narrowed_model_saves_loads_and_trains(tmp_path):
    torch.manual_seed(0)
    slim = narrowed(_trained_like(SegUNet(CONFIGS["tiny"])), (2, 4, 8)).train()
    slim(torch.rand(2, 3, 20, 28)).sum().backward()
    assert all(p.grad is not None for p in slim.parameters())
    save_seg_unet(tmp_path / "slim.safetensors", slim)
    loaded = load_seg_unet(tmp_path / "slim.safetensors")
    x = torch.rand(1, 3, 24, 24)
    torch.testing.assert_close(loaded(x), slim.eval()(x))
    with pytest.raises(AssertionError, match="can only narrow"):
        narrowed(slim, (4, 4, 8))
