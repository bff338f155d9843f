"""PConvUNet: shapes, known pixels kept, holes ignored, the paper's layer layout, phase-2 freezing, save/load."""

import pytest
import torch
from torch import nn

from ocr_restore.nn.partialconv import PartialConv2d
from ocr_restore.nn.pconv_unet import CONFIGS, PConvUNet, PConvUNetConfig, load_pconv, save_pconv


def holes(B, H, W, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, 1, H, W)
    for b in range(B):
        y, x = torch.randint(0, H - 8, (1,), generator=g).item(), torch.randint(0, W - 12, (1,), generator=g).item()
        mask[b, :, y:y + 8, x:x + 12] = 0
    return mask


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("size", [(37, 53), (64, 128), (20, 20)])
def test_any_size_gives_an_output_of_that_size_without_nan(name, size):
    torch.manual_seed(0)
    model = PConvUNet(CONFIGS[name]).eval()
    image = torch.rand(2, 3, *size)
    out = model(image, holes(2, *size))
    assert out.shape == image.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_composite_keeps_every_known_pixel(name):
    model = PConvUNet(CONFIGS[name]).eval()
    image, mask = torch.rand(2, 3, 30, 41), holes(2, 30, 41, seed=1)
    composite = model.inpaint(image, mask)
    assert torch.equal(composite[mask.expand_as(image) == 1], image[mask.expand_as(image) == 1])
    assert composite.min() >= 0 and composite.max() <= 1


@pytest.mark.parametrize("train", [False, True])
def test_hole_content_never_reaches_the_output(train):
    torch.manual_seed(2)
    model = PConvUNet(CONFIGS["tiny"]).train(train)
    image, mask = torch.rand(2, 3, 32, 48), holes(2, 32, 48, seed=2)
    scribbled = torch.where(mask == 1, image, torch.rand_like(image) * 50)
    torch.testing.assert_close(model(image, mask), model(scribbled, mask), rtol=0, atol=1e-6)


def test_a_fully_unknown_image_gives_finite_output():
    out = PConvUNet(CONFIGS["tiny"]).eval()(torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))
    assert torch.isfinite(out).all()


def test_the_paper_layer_layout():
    config = PConvUNetConfig(widths=(8, 16, 24), kernel_sizes=(7, 5, 3))
    model = PConvUNet(config)
    convs = [b.conv for b in model.encoder]
    assert [c.kernel_size[0] for c in convs] == [7, 5, 3] and all(c.stride == (2, 2) for c in convs)
    assert isinstance(model.encoder[0].bn, nn.Identity)  # no BatchNorm on the first encoder layer
    assert all(isinstance(b.bn, nn.BatchNorm2d) for b in model.encoder[1:])
    # decoder[i] joins level i+1 (up-sampled) with the skip of level i: in channels add up, last outputs RGB
    assert [b.conv.in_channels for b in model.decoder] == [8 + 3, 16 + 8, 24 + 16]
    assert [b.conv.out_channels for b in model.decoder] == [3, 8, 16]
    assert all(isinstance(b.bn, nn.BatchNorm2d) and b.act.negative_slope == 0.2 for b in model.decoder[1:])
    assert isinstance(model.decoder[0].bn, nn.Identity) and isinstance(model.decoder[0].act, nn.Identity)
    assert all(isinstance(m.conv, PartialConv2d) for m in [*model.encoder, *model.decoder])


@pytest.mark.parametrize("name, channels", [("tiny-rgb", 3), ("tiny", 1)])
def test_skip_connections_concatenate_masks(name, channels):
    """The last decoder layer sees the up-sampled decoder mask of level 1 beside the input mask, with the
    image (RGB) or its ink coverage (glyph-first) as the input: each window counts the known elements of
    both, as one mask channel per feature channel would."""
    model = PConvUNet(CONFIGS[name]).eval()
    mask = torch.ones(1, 1, 16, 16)
    mask[..., :, :11] = 0  # too wide for the two decoder levels below to fill
    seen = {}
    model.decoder[1].register_forward_hook(lambda m, args, out: seen.update(level1=out[1]))
    joined = model.decoder[0].conv.masked
    model.decoder[0].conv.masked = lambda x, known, total: seen.update(x=x, known=known, total=total) or joined(x, known, total)
    model(torch.rand(1, 3, 16, 16), mask)
    up = seen["level1"].repeat_interleave(2, 2).repeat_interleave(2, 3)
    per_channel = torch.cat([up.expand(-1, 8, -1, -1), mask.expand(-1, channels, -1, -1)], 1)
    assert seen["total"] == 8 + channels and seen["x"].shape == (1, 8 + channels, 16, 16)
    assert torch.equal(seen["known"], per_channel.sum(1, keepdim=True))
    assert torch.all(seen["x"][per_channel == 0] == 0), "features are masked before the convolution"
    assert (up == 0).any() and not torch.equal(up, mask), "masks should differ and keep a hole for the test to mean something"


def test_glyph_output_is_a_blend_of_the_paper_and_ink_around_the_hole():
    torch.manual_seed(3)
    model = PConvUNet(CONFIGS["tiny"]).eval()
    paper, ink = torch.tensor([0.9, 0.85, 0.6]), torch.tensor([0.1, 0.1, 0.4])
    image = paper.view(1, 3, 1, 1).expand(1, 3, 32, 48).clone()
    image[..., 10:20, 5:40] = ink.view(1, 3, 1, 1)  # a bar of ink
    mask = holes(1, 32, 48, seed=3)
    prediction = model.predict(image, mask)
    alpha = torch.sigmoid(prediction.alpha_logit)
    torch.testing.assert_close(prediction.output, alpha * ink.view(1, 3, 1, 1) + (1 - alpha) * paper.view(1, 3, 1, 1),
                               rtol=0, atol=1e-4)


def test_default_config_fits_the_cpu_budget():
    params = sum(p.numel() for p in PConvUNet(CONFIGS["default"]).parameters())
    assert 1_000_000 <= params <= 3_000_000


def test_freeze_encoder_bn_for_phase_two():
    torch.manual_seed(4)
    model = PConvUNet(CONFIGS["tiny"])
    model.freeze_encoder_bn()
    model.train()
    encoder_bn, decoder_bn = model.encoder[1].bn, model.decoder[1].bn
    before_enc, before_dec = encoder_bn.running_mean.clone(), decoder_bn.running_mean.clone()
    model(torch.rand(2, 3, 32, 32), holes(2, 32, 32)).mean().backward()
    assert not encoder_bn.training and decoder_bn.training
    assert torch.equal(encoder_bn.running_mean, before_enc)
    assert not torch.equal(decoder_bn.running_mean, before_dec)
    assert encoder_bn.weight.grad is None and not encoder_bn.weight.requires_grad
    assert decoder_bn.weight.grad is not None


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(5)
    model = PConvUNet(CONFIGS["tiny"])
    model(torch.rand(2, 3, 32, 32), holes(2, 32, 32))  # move the BatchNorm statistics off their defaults
    model.eval()
    save_pconv(tmp_path / "p.safetensors", model)
    loaded = load_pconv(tmp_path / "p.safetensors")
    assert loaded.config == model.config and not loaded.training
    image, mask = torch.rand(1, 3, 24, 40), holes(1, 24, 40)
    assert torch.equal(loaded(image, mask), model(image, mask))
