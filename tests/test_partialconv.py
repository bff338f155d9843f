"""PartialConv2d against a direct unfold computation of Liu et al. (2018), eq. (1)-(2)."""

import pytest
import torch
import torch.nn.functional as F

from ocr_restore.nn.partialconv import PartialConv2d


def direct_partial_conv(conv: PartialConv2d, x: torch.Tensor, mask: torch.Tensor):
    """The paper's formula written out window by window, in float64."""
    x, mask = x.double(), mask.double().expand_as(x)
    B, C, H, W = x.shape
    geometry = dict(kernel_size=conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
    x_cols = F.unfold(x * mask, **geometry)  # (B, C*kH*kW, L)
    m_cols = F.unfold(mask, **geometry)  # (B, C*kH*kW, L)
    known = m_cols.sum(1, keepdim=True)  # (B, 1, L)
    out = conv.weight.double().view(conv.out_channels, -1) @ x_cols  # (B, O, L)
    out = out * m_cols.shape[1] / known.clamp(min=1e-12)
    if conv.bias is not None:
        out = out + conv.bias.double().view(1, -1, 1)
    out = torch.where(known > 0, out, 0.0)
    Ho = (H + 2 * conv.padding[0] - conv.dilation[0] * (conv.kernel_size[0] - 1) - 1) // conv.stride[0] + 1
    Wo = (W + 2 * conv.padding[1] - conv.dilation[1] * (conv.kernel_size[1] - 1) - 1) // conv.stride[1] + 1
    return out.view(B, -1, Ho, Wo), (known > 0).double().view(B, 1, Ho, Wo)


@pytest.mark.parametrize("kernel,stride,padding,dilation", [(3, 1, 1, 1), (5, 2, 2, 1), (7, 2, 3, 1), (3, 1, 2, 2), (4, 3, 0, 1)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mask_channels", [1, 4])
def test_matches_direct_computation(kernel, stride, padding, dilation, bias, mask_channels):
    torch.manual_seed(kernel * 100 + stride * 10 + padding + dilation + bias)
    conv = PartialConv2d(4, 6, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
    x = torch.randn(2, 4, 19, 23)
    mask = (torch.rand(2, mask_channels, 19, 23) > 0.6).float()
    mask[:, :, 2:15, 3:18] = 0  # a hole wide enough that some windows see nothing
    out, new_mask = conv(x, mask)
    want_out, want_mask = direct_partial_conv(conv, x, mask)
    assert new_mask.shape == (2, 1, *out.shape[2:])
    assert 0 < new_mask.sum() < new_mask.numel(), "the test should mix empty and non-empty windows"
    torch.testing.assert_close(out.double(), want_out, rtol=1e-5, atol=1e-5)
    assert torch.equal(new_mask.double(), want_mask)


def test_two_inputs_with_a_mask_each_join_as_one_mask_per_channel():
    """What a decoder does: features masked beforehand and a count of known channels, against the paper's
    formula with the two masks expanded to every channel."""
    torch.manual_seed(4)
    conv = PartialConv2d(5 + 3, 4, 3, padding=1)
    up, skip = torch.randn(2, 5, 12, 14), torch.randn(2, 3, 12, 14)
    up_mask, skip_mask = ((torch.rand(2, 1, 12, 14) > p).float() for p in (0.5, 0.3))
    up_mask[..., 3:9, 2:11] = skip_mask[..., 4:10, 3:12] = 0
    out, new_mask = conv.masked(torch.cat([up * up_mask, skip * skip_mask], 1), 5 * up_mask + 3 * skip_mask, 8)
    per_channel = torch.cat([up_mask.expand(-1, 5, -1, -1), skip_mask.expand(-1, 3, -1, -1)], 1)
    want_out, want_mask = direct_partial_conv(conv, torch.cat([up, skip], 1), per_channel)
    assert 0 < new_mask.sum() < new_mask.numel()
    torch.testing.assert_close(out.double(), want_out, rtol=1e-5, atol=1e-5)
    assert torch.equal(new_mask.double(), want_mask)


def test_all_ones_mask_is_an_ordinary_convolution():
    torch.manual_seed(0)
    conv = PartialConv2d(3, 5, 3, stride=2, dilation=2)
    x = torch.randn(2, 3, 20, 16)
    out, new_mask = conv(x, torch.ones(2, 1, 20, 16))
    torch.testing.assert_close(out, F.conv2d(x, conv.weight, conv.bias, stride=2, dilation=2))
    assert torch.all(new_mask == 1)


def test_padding_counts_as_hole_but_interior_is_ordinary():
    torch.manual_seed(1)
    conv = PartialConv2d(2, 3, 3, padding=1)
    x = torch.randn(1, 2, 8, 8)
    out, _ = conv(x, torch.ones(1, 2, 8, 8))
    plain = F.conv2d(x, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])
    corner = F.conv2d(x[..., :2, :2], conv.weight[..., 1:, 1:], None)[0, :, 0, 0] * 9 / 4 + conv.bias
    torch.testing.assert_close(out[0, :, 0, 0], corner)


def test_window_over_hole_only_is_exactly_zero():
    torch.manual_seed(2)
    conv = PartialConv2d(3, 4, 3, padding=1, bias=True)
    with torch.no_grad():
        conv.bias.fill_(5.0)
    x = torch.randn(1, 3, 10, 10) * 100  # hole content must not leak through
    mask = torch.ones(1, 1, 10, 10)
    mask[..., 2:8, 2:8] = 0
    out, new_mask = conv(x, mask)
    assert torch.all(out[..., 3:7, 3:7] == 0)
    assert torch.all(new_mask[..., 3:7, 3:7] == 0)
    assert torch.all(new_mask[..., 2, 2:8] == 1)
    assert torch.all(out[:, :, 2, 2:8] != 0)


def test_holes_shrink_from_layer_to_layer_until_they_vanish():
    torch.manual_seed(3)
    layers = [PartialConv2d(2, 2, 3, padding=1) for _ in range(6)]
    x = torch.randn(1, 2, 24, 24)
    mask = torch.ones(1, 1, 24, 24)
    mask[..., 5:14, 8:17] = 0  # a 9x9 hole loses one pixel per side per 3x3 layer
    hole_sizes = [int((mask == 0).sum())]
    for layer in layers:
        x, mask = layer(x, mask)
        hole_sizes.append(int((mask == 0).sum()))
    assert hole_sizes[:6] == [81, 49, 25, 9, 1, 0]
    assert hole_sizes[-1] == 0


def test_mask_tracks_no_gradient_and_holes_get_none():
    conv = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 9, 9, requires_grad=True)
    mask = torch.ones(1, 3, 9, 9)
    mask[:, :, 3:6, 3:6] = 0
    mask.requires_grad_(True)
    out, new_mask = conv(x, mask)
    assert not new_mask.requires_grad
    out.sum().backward()
    assert mask.grad is None
    assert torch.all(x.grad[:, :, 3:6, 3:6] == 0)
    assert torch.all(x.grad[:, :, 0, :] != 0)


def test_mask_kernel_is_a_non_persistent_buffer_and_no_state_is_kept():
    conv = PartialConv2d(3, 4, 5)
    assert "window" not in conv.state_dict()
    assert set(conv.state_dict()) == {"weight", "bias"}
    a = conv(torch.randn(1, 3, 9, 9), torch.zeros(1, 1, 9, 9))
    b = conv(torch.ones(1, 3, 9, 9), torch.ones(1, 1, 9, 9))
    assert torch.all(a[0] == 0) and torch.all(b[1] == 1)


def test_half_precision_has_no_nan_over_holes():
    conv = PartialConv2d(3, 4, 3, padding=1).half()
    mask = torch.ones(1, 1, 8, 8, dtype=torch.half)
    mask[..., 2:7, 2:7] = 0
    try:
        out, new_mask = conv(torch.randn(1, 3, 8, 8).half(), mask)
    except RuntimeError as e:  # some CPU builds lack fp16 convolutions
        pytest.skip(str(e))
    assert not torch.isnan(out).any()
    assert torch.all(out[..., 4, 4] == 0) and new_mask[..., 4, 4].item() == 0
