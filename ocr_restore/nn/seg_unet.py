"""A small segmentation U-Net that finds occluding shapes on text images.

It maps an RGB image to two logit maps: "any occluder" and "paper-coloured
occluder" (erasures, white-out), the second a subset of the first. Text and
occluders can share a colour, so the network has to decide from stroke width,
geometry and context: the encoder's four poolings give it a receptive field of
several text heights at the normalised scale (TEXT_HEIGHT = 24 px em).
"""

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .weights import load_weights, save_weights

__all__ = ["SegUNetConfig", "SegUNet", "CONFIGS", "fold_batchnorm", "narrowed", "save_seg_unet", "load_seg_unet"]

WEIGHTS_NAME = "seg_unet"  # model name stored in the weights file


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by BatchNorm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UpBlock(nn.Module):
    """Bilinear 2x upsampling (no checkerboard artefacts), concatenation with the skip, ConvBlock."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv = ConvBlock(in_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))  # (B, C_in + C_skip, H, W)


@dataclass
class SegUNetConfig:
    in_channels: int = 3  # RGB in [0, 1]
    widths: tuple[int, ...] = (16, 32, 48, 64, 96)  # channels per level; depth = len(widths), 2x pooling between
    out_channels: int = 2  # logits: 0 = occluder, 1 = paper-coloured occluder

    def __post_init__(self):
        self.widths = tuple(self.widths)  # a JSON round trip gives a list
        assert len(self.widths) >= 1, "widths needs at least one level"
        assert self.out_channels >= 1, f"out_channels must be positive, got {self.out_channels}"

    @property
    def depth(self) -> int:
        return len(self.widths)


CONFIGS = {
    "default": SegUNetConfig(),
    # the first two levels at half width: a 496 x 448 tile in 0.57 of the time on a CPU; trained from the default
    # model `narrowed` to it (`make train-detector-slim`)
    "slim": SegUNetConfig(widths=(8, 16, 32, 64, 96)),
    "tiny": SegUNetConfig(widths=(4, 8, 8)),  # for tests: a few thousand parameters
}


class SegUNet(nn.Module):
    """Plain convolutional U-Net (Ronneberger et al., MICCAI 2015) with BatchNorm, for occluder segmentation.

    forward(x) takes (B, in_channels, H, W) in [0, 1] of any size: the input is
    padded by edge replication to a multiple of 2**(depth-1) and the logits
    (B, out_channels, H, W) are cropped back.
    """

    def __init__(self, config: SegUNetConfig):
        super().__init__()
        self.config = config
        widths = config.widths
        self.down = nn.ModuleList(
            ConvBlock(c_in, c_out) for c_in, c_out in zip((config.in_channels,) + widths[:-1], widths)
        )
        self.up = nn.ModuleList(UpBlock(widths[i + 1], widths[i], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this."""
        return 2 ** (self.config.depth - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == self.config.in_channels, (
            f"expected (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}"
        )
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        x = x - 0.5  # centre the input; BatchNorm follows the first convolution anyway
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(x, skip)
        return self.head(x)[..., :height, :width]  # (B, out_channels, H, W)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def fold_batchnorm(model: SegUNet) -> SegUNet:
    """A copy of `model` for inference, each BatchNorm folded into the convolution before it.

    The same function as `model` in eval mode, to float rounding, and a few per cent faster on a CPU:
    every BatchNorm was a pass over an activation map of its own.
    """
    folded = SegUNet(model.config).to(next(model.parameters()).device)
    folded.load_state_dict(model.state_dict())
    for block in [*folded.down, *(up.conv for up in folded.up)]:
        for i in range(0, len(block), 3):  # (conv, norm, relu) triples
            conv, norm = block[i], block[i + 1]
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            conv.weight.mul_(scale[:, None, None, None])
            conv.bias = nn.Parameter(norm.bias - norm.running_mean * scale)
            block[i + 1] = nn.Identity()
    return folded.eval()


def _strongest(norm: nn.BatchNorm2d, count: int) -> torch.Tensor:
    """The `count` channels with the largest BatchNorm scale |gamma|, in their order: those the next layer hears
    most of (network slimming, Liu et al., ICCV 2017)."""
    return norm.weight.abs().argsort(descending=True)[:count].sort().values


def _narrow_block(block: ConvBlock, inputs: torch.Tensor, width: int) -> torch.Tensor:
    """Keep `inputs` of the block's input channels and `width` of each convolution's outputs, in place;
    returns the output channels kept."""
    for i in (0, 3):  # (conv, norm, relu) twice
        conv, norm = block[i], block[i + 1]
        kept = _strongest(norm, width)
        conv.weight = nn.Parameter(conv.weight[kept][:, inputs])
        conv.in_channels, conv.out_channels = len(inputs), width
        for name in ("weight", "bias"):
            setattr(norm, name, nn.Parameter(getattr(norm, name)[kept]))
        for name in ("running_mean", "running_var"):
            setattr(norm, name, getattr(norm, name)[kept])
        norm.num_features = width
        inputs = kept
    return inputs


@torch.no_grad()
def narrowed(model: SegUNet, widths: tuple[int, ...]) -> SegUNet:
    """A copy of `model` with `widths` channels per level (each at most the model's), keeping at each convolution
    the channels of largest BatchNorm scale: a start for training a narrower, faster model from a trained one.
    Channels dropped with scale and shift 0 contributed nothing, and the copy computes what the model did."""
    old = model.config.widths
    assert len(widths) == len(old) and all(0 < w <= o for w, o in zip(widths, old)), (
        f"can only narrow the {len(old)} levels {old}, not to {widths}"
    )
    copy = SegUNet(model.config)
    copy.load_state_dict(model.state_dict())
    copy.config = replace(model.config, widths=tuple(widths))
    kept = torch.arange(model.config.in_channels)
    skips = []
    for block, width in zip(copy.down, widths):
        kept = _narrow_block(block, kept, width)
        skips.append(kept)
    for level, up in zip(reversed(range(len(widths) - 1)), copy.up):  # its input: the level below, then the skip
        kept = _narrow_block(up.conv, torch.cat([kept, old[level + 1] + skips[level]]), widths[level])
    copy.head.weight = nn.Parameter(copy.head.weight[:, kept])
    copy.head.in_channels = len(kept)
    return copy.to(next(model.parameters()).device).train(model.training)


def save_seg_unet(path: str | Path, model: SegUNet, **extra: str) -> None:
    """Write the model's weights and config to a safetensors file."""
    save_weights(path, model, model.config, WEIGHTS_NAME, **extra)


def load_seg_unet(path: str | Path, device: str | torch.device = "cpu") -> SegUNet:
    """Rebuild a SegUNet, in eval mode, from a file written by `save_seg_unet`."""
    config, state = load_weights(path, SegUNetConfig, WEIGHTS_NAME)
    model = SegUNet(config)
    model.load_state_dict(state)
    return model.to(device).eval()
