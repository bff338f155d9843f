"""The Partial Convolution U-Net that fills the holes (Liu et al., ECCV 2018).

Blocks first, then the config, then the model, then the builders that save and
load it with its config (see nn/weights.py). Inside this module masks follow the
paper: 1 = known pixel, 0 = hole.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from .coverage import Fields, compose, coverage, estimate_fields
from .partialconv import PartialConv2d
from .weights import load_weights, save_weights

__all__ = ["PConvUNetConfig", "PConvUNet", "Prediction", "CONFIGS", "save_pconv", "load_pconv"]

WEIGHTS_NAME = "pconv_unet"  # model name stored in the weights file


class EncoderBlock(nn.Module):
    """Stride-2 partial convolution -> BatchNorm (optional) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, batch_norm: bool):
        super().__init__()
        self.conv = PartialConv2d(in_channels, out_channels, kernel_size, stride=2, padding=kernel_size // 2,
                                  bias=not batch_norm)
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

    def forward(self, x, mask):
        x, mask = self.conv(x, mask)
        return F.relu(self.bn(x)), mask


class DecoderBlock(nn.Module):
    """Nearest up-sampling, concatenation of features and masks with the skip, partial convolution,
    then BatchNorm and LeakyReLU(0.2) except in the last block, which outputs the image."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, kernel_size: int, last: bool):
        super().__init__()
        self.conv = PartialConv2d(in_channels + skip_channels, out_channels, kernel_size, padding=kernel_size // 2,
                                  bias=last)
        self.bn = nn.Identity() if last else nn.BatchNorm2d(out_channels)
        self.act = nn.Identity() if last else nn.LeakyReLU(0.2)

    def forward(self, x, mask, skip, skip_mask):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        mask = F.interpolate(mask, scale_factor=2, mode="nearest")
        # a window counts the known elements of both inputs, as a mask of every channel would
        known_channels = x.shape[1] * mask + skip.shape[1] * skip_mask
        x, mask = self.conv.masked(torch.cat([x * mask, skip * skip_mask], 1), known_channels,
                                   x.shape[1] + skip.shape[1])
        return self.act(self.bn(x)), mask


@dataclass
class PConvUNetConfig:
    in_channels: int = 3  # image channels (RGB); the output has as many
    widths: tuple[int, ...] = (32, 64, 128, 128, 128)  # encoder channels per level; the decoder mirrors them
    kernel_sizes: tuple[int, ...] = (7, 5, 5, 3, 3)  # encoder kernel per level (paper: 7, 5, 5, 3, 3, 3, 3, 3)
    decoder_kernel: int = 3  # kernel of every decoder partial convolution (paper: 3)
    # glyph-first: the U-Net maps the known pixels' ink coverage to the holes' (one channel in, one out),
    # and the output is composed from it and the paper and ink colours (nn/coverage.py); else RGB to RGB
    glyph: bool = False

    def __post_init__(self):
        # JSON round trips turn tuples into lists
        self.widths, self.kernel_sizes = tuple(self.widths), tuple(self.kernel_sizes)
        assert len(self.widths) == len(self.kernel_sizes), \
            f"{len(self.widths)} widths but {len(self.kernel_sizes)} kernel sizes"


CONFIGS = {
    "default": PConvUNetConfig(glyph=True),  # about 1.3M parameters
    "rgb": PConvUNetConfig(),  # the paper's RGB output, for ablations and the weights shipped before
    "tiny": PConvUNetConfig(widths=(8, 16, 16), kernel_sizes=(5, 3, 3), glyph=True),  # for tests
    "tiny-rgb": PConvUNetConfig(widths=(8, 16, 16), kernel_sizes=(5, 3, 3)),
}


@dataclass
class Prediction:
    """What the network made of a batch: the output image and, glyph-first, how it was composed."""

    output: torch.Tensor  # (B, C, H, W), every pixel predicted (use `composite` to keep the known ones)
    alpha_logit: torch.Tensor | None = None  # (B, 1, H, W): the predicted ink coverage, before the sigmoid
    fields: Fields | None = None  # the paper and ink colours it was composed with


class PConvUNet(nn.Module):
    """U-Net of partial convolutions for irregular holes (Liu et al., "Image Inpainting for
    Irregular Holes Using Partial Convolutions", ECCV 2018).

    Encoder: stride-2 partial convolutions, BatchNorm on all but the first, ReLU.
    Decoder: nearest up-sampling, skip connections that concatenate features and
    masks, partial convolutions, BatchNorm and LeakyReLU(0.2); the last layer
    concatenates the input and its mask and outputs the image, unnormalised, or,
    glyph-first, the ink coverage's logit.
    Any image size works: the input is padded with holes to a multiple of
    2**depth and the output cropped back.
    """

    def __init__(self, config: PConvUNetConfig):
        super().__init__()
        self.config = config
        widths = (1 if config.glyph else config.in_channels, *config.widths)
        self.encoder = nn.ModuleList(
            EncoderBlock(widths[i], widths[i + 1], k, batch_norm=i > 0) for i, k in enumerate(config.kernel_sizes))
        # decoder[i] up-samples level i+1 to level i and joins the skip of level i (level 0: the input image)
        self.decoder = nn.ModuleList(
            DecoderBlock(widths[i + 1], widths[i], widths[i], config.decoder_kernel, last=i == 0)
            for i in range(len(config.widths)))
        self.encoder_bn_frozen = False

    @property
    def depth(self) -> int:
        return len(self.config.widths)

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this."""
        return 2 ** self.depth

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network output (B, C, H, W) for `image` (B, C, H, W) in [0, 1] and `mask`
        (B, 1, H, W), 1 = known, 0 = hole. Use `composite` to keep the known pixels."""
        return self.predict(image, mask).output

    def predict(self, image: torch.Tensor, mask: torch.Tensor) -> Prediction:
        assert image.shape[1] == self.config.in_channels, f"expected {self.config.in_channels} channels, got {image.shape[1]}"
        if not self.config.glyph:
            return Prediction(self._unet(image, mask))
        fields = estimate_fields(image, mask)
        alpha_logit = self._unet(coverage(image, fields), mask)
        return Prediction(compose(torch.sigmoid(alpha_logit), fields), alpha_logit, fields)

    def _unet(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The U-Net in its weights' precision (bfloat16 for inference where it is native), returned in `x`'s; the
        colour fields and the composition stay in the image's: an Otsu histogram counts in bfloat16 only to 256."""
        dtype, x = x.dtype, x.to(self.encoder[0].conv.weight.dtype)
        H, W = x.shape[2:]
        pad = (0, -W % self.multiple, 0, -H % self.multiple)
        x, m = F.pad(x, pad), F.pad(mask.to(x.dtype), pad)  # padding is unknown: zeros in the mask
        skips = [(x, m)]
        for block in self.encoder:
            x, m = block(x, m)
            skips.append((x, m))
        skips.pop()  # the deepest level is x itself
        for block in reversed(self.decoder):
            x, m = block(x, m, *skips.pop())
        return x[:, :, :H, :W].to(dtype)

    @staticmethod
    def composite(image: torch.Tensor, mask: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """M * I + (1 - M) * output: every known pixel kept as it was."""
        return mask * image + (1 - mask) * output

    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The composite, clamped to [0, 1], for inference."""
        return self.composite(image, mask, self(image, mask)).clamp(0, 1)

    def freeze_encoder_bn(self) -> None:
        """Phase 2 of the paper: the encoder's BatchNorm keeps its statistics and parameters,
        since holes bias the batch statistics; the decoder's goes on learning."""
        self.encoder_bn_frozen = True
        for bn in self._encoder_bns():
            bn.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.encoder_bn_frozen:
            for bn in self._encoder_bns():
                bn.eval()
        return self

    def _encoder_bns(self):
        return [m for m in self.encoder.modules() if isinstance(m, nn.BatchNorm2d)]


def save_pconv(path: str | Path, model: PConvUNet, **extra: str) -> None:
    """Write the model's weights and config to a safetensors file."""
    save_weights(path, model, model.config, WEIGHTS_NAME, **extra)


def load_pconv(path: str | Path, device: str | torch.device = "cpu") -> PConvUNet:
    """Rebuild a PConvUNet, in eval mode, from a file written by `save_pconv`."""
    config, state = load_weights(path, PConvUNetConfig, WEIGHTS_NAME)
    model = PConvUNet(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # written by another version of this module
        raise ModelError(f"{path}: the weights do not fit this version of the PConv U-Net ({e}); re-train them "
                         "with `ocr-restore train inpainter`") from e
    return model.to(device).eval()
