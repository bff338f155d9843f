"""Partial convolution: a convolution that sees only the known pixels.

Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions",
ECCV 2018, eq. (1)-(2). The interface follows NVIDIA's reference layer (an
`nn.Conv2d` that returns `(output, new_mask)`), without its flaws: the mask
kernel is a non-persistent buffer, nothing is cached between calls and eps is
a parameter.
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PartialConv2d"]


class PartialConv2d(nn.Conv2d):
    """Masked, renormalised convolution followed by the mask update (Liu et al. 2018).

    For each window, with M the mask (1 = known, 0 = hole) and X the features:

        out = W . (X * M) * sum(1) / sum(M) + b   where sum(M) > 0
        out = 0                                   elsewhere
        new_mask = 1 where sum(M) > 0, else 0

    The mask is either one channel, (B, 1, H, W), shared by every input channel,
    or one per input channel, (B, C_in, H, W); in both cases a window counts
    C_in * kH * kW elements, as in the paper. The new mask, shared by all output
    channels, is (B, 1, H', W'). Mask arithmetic tracks no gradients.

    `eps` bounds the divisor away from zero: 1e-6 is still representable in fp16,
    where the reference layer's 1e-8 rounds to 0. Only zero padding is supported:
    padded pixels count as holes, which is the paper's "partial padding".
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, bias: bool = True, eps: float = 1e-6):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, bias=bias)
        self.eps = eps
        self.register_buffer("window", torch.ones(1, 1, *self.kernel_size), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert mask.shape[1] in (1, x.shape[1]), \
            f"mask has {mask.shape[1]} channels, expected 1 or {x.shape[1]}"
        assert mask.shape[2:] == x.shape[2:], f"mask {tuple(mask.shape)} and features {tuple(x.shape)} differ in size"
        mask = mask.detach()
        # Summing the mask over channels first turns the C_in*kH*kW window sum into one 1-channel conv.
        return self.masked(x * mask.to(x.dtype), mask.sum(1, keepdim=True), mask.shape[1])

    def masked(self, masked_x: torch.Tensor, known_channels: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` for features already multiplied by their mask, given `known_channels` (B, 1, H, W): how many
        of `channels` channels each pixel knows. A decoder joins two inputs, each with a one-channel mask, this
        way without building a mask of every channel."""
        with torch.no_grad():
            # counts in float32 whatever the features' precision: float16 spells integers exactly only to 2048
            known = F.conv2d(known_channels.float(), self.window.float(),
                             stride=self.stride, padding=self.padding, dilation=self.dilation)  # (B, 1, H', W')
            window_size = channels * self.window.numel()
            new_mask = (known > 0).to(masked_x.dtype)
            # where(), not a product with new_mask: window_size / eps overflows fp16 and inf * 0 is NaN.
            scale = torch.where(known > 0, window_size / known.clamp(min=self.eps), 0.0).to(masked_x.dtype)
        out = self._conv_forward(masked_x, self.weight, None) * scale
        if self.bias is not None:
            out = (out + self.bias.view(1, -1, 1, 1)) * new_mask
        return out, new_mask
