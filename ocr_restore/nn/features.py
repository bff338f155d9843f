"""Frozen feature networks for the perceptual and style losses.

The paper (Liu et al., ECCV 2018) compares pool1..pool3 features of an ImageNet
VGG-16. Those weights cannot be downloaded here, so two networks give the same
three feature maps:

- `Vgg16Features`: VGG-16's first three blocks in torchvision's layer layout,
  loaded from a torchvision state-dict file the user supplies (--perceptual PATH);
- `TextFeatureNet`: a small VGG-style network the project trains itself as a
  character classifier on rendered text (train/features.py) and ships in
  models/text_features.safetensors.

A randomly initialised network is never used as a perceptual network:
`load_feature_net` raises ModelError when neither is available.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from .weights import load_weights, save_weights, shipped

__all__ = [
    "Vgg16Features",
    "TextFeatureConfig",
    "TextFeatureNet",
    "DEFAULT_TEXT_FEATURES",
    "save_text_features",
    "load_feature_net",
]

DEFAULT_TEXT_FEATURES = shipped("text_features.safetensors")
WEIGHTS_NAME = "text_features"  # model name stored in the weights file

# torchvision's VGG-16 ("D") up to pool3: conv widths, "M" = 2x2 max pooling
VGG16_TO_POOL3 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layers(layout, batch_norm: bool) -> nn.Sequential:
    """torchvision's `make_layers`: 3x3 convs with ReLU (and BatchNorm), "M" for max pooling."""
    layers, channels = [], 3
    for v in layout:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(channels, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        channels = v
    return nn.Sequential(*layers)


class PoolFeatures(nn.Module):
    """A normalised input through `self.features`, returning the output of every pooling layer."""

    features: nn.Sequential

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """[pool1, pool2, pool3] for `image` (B, 3, H, W) in [0, 1]."""
        x = (image - self.mean) / self.std
        pools = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                pools.append(x)
        return pools


class Vgg16Features(PoolFeatures):
    """VGG-16 (Simonyan & Zisserman 2015) up to pool3, the perceptual network of Liu et al. (2018).

    Layers are numbered as torchvision's `vgg16().features`, so the `features.*`
    keys of a torchvision state dict load as they are. Inputs are normalised with
    the ImageNet mean and std the weights were trained with.
    """

    def __init__(self):
        super().__init__(IMAGENET_MEAN, IMAGENET_STD)
        self.features = vgg_layers(VGG16_TO_POOL3, batch_norm=False)

    @classmethod
    def from_file(cls, path: str | Path) -> "Vgg16Features":
        """Load the `features.*` tensors of a torchvision VGG-16 state dict (.pth, .pt or .safetensors)."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: VGG-16 weights file not found")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file
                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch.load and safetensors raise many types for a bad file
            raise ModelError(f"{path}: cannot read VGG-16 weights ({e})") from e
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model = cls()
        wanted = model.state_dict()
        missing = [k for k in wanted if k not in state]
        if missing:
            raise ModelError(f"{path}: not a torchvision VGG-16 state dict, it lacks {', '.join(missing[:4])}; "
                             "save one with torch.save(torchvision.models.vgg16(weights='IMAGENET1K_V1').state_dict(), PATH)")
        wrong = [k for k in wanted if state[k].shape != wanted[k].shape]
        if wrong:
            raise ModelError(f"{path}: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, "
                             f"VGG-16 has {tuple(wanted[wrong[0]].shape)}")
        model.load_state_dict({k: state[k].float() for k in wanted})
        return model


@dataclass
class TextFeatureConfig:
    widths: tuple[int, ...] = (16, 32, 64)  # channels of the three conv stages, each ending in a pooling
    convs_per_stage: int = 2  # 3x3 conv-BN-ReLU layers before each pooling
    crop: int = 32  # side of the square glyph crops it classifies
    num_classes: int = 94  # printable ASCII characters without the space

    def __post_init__(self):
        self.widths = tuple(self.widths)  # JSON round trips turn tuples into lists


class TextFeatureNet(PoolFeatures):
    """VGG-style features learnt on text: three stages of conv-BN-ReLU and 2x2 max pooling.

    It stands in for ImageNet VGG-16 in the perceptual and style losses of Liu et
    al. (2018); `classify` adds the character-classification head it is trained
    with (train/features.py).
    """

    def __init__(self, config: TextFeatureConfig):
        super().__init__((0.5,) * 3, (0.25,) * 3)
        self.config = config
        layout = [v for w in config.widths for v in (*[w] * config.convs_per_stage, "M")]
        self.features = vgg_layers(layout, batch_norm=True)
        side = config.crop // 2 ** len(config.widths)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(config.widths[-1] * side * side, config.num_classes))

    def classify(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) for crops (B, 3, crop, crop) in [0, 1]."""
        return self.head(self(image)[-1])


def save_text_features(path: str | Path, model: TextFeatureNet, **extra: str) -> None:
    """Write a TextFeatureNet's weights and config to a safetensors file."""
    save_weights(path, model, model.config, WEIGHTS_NAME, **extra)


def load_feature_net(vgg_weights: str | Path | None = None, text_features: str | Path | None = None) -> nn.Module:
    """The frozen perceptual network: VGG-16 from `vgg_weights` when given, else the TextFeatureNet
    in `text_features` (by default the shipped models/text_features.safetensors).

    Raises ModelError when neither is available, rather than fall back to random weights.
    """
    if vgg_weights is not None:
        model = Vgg16Features.from_file(vgg_weights)
    else:
        path = Path(text_features or DEFAULT_TEXT_FEATURES)
        if not path.is_file():
            raise ModelError(
                f"{path}: the perceptual feature network is missing; pass --perceptual PATH (a torchvision "
                "VGG-16 state dict), train it with `ocr-restore train features`, or train without the "
                "perceptual and style terms with --perceptual none")
        config, state = load_weights(path, TextFeatureConfig, WEIGHTS_NAME)
        model = TextFeatureNet(config)
        model.load_state_dict(state)
    return model.eval().requires_grad_(False)
