"""Train the text feature network that stands in for ImageNet VGG-16 in the perceptual loss.

`ocr-restore train features`: a TextFeatureNet learns to name the middle
character of 32x32 crops of rendered text (printable ASCII in the project's
fonts, at sizes around TEXT_HEIGHT, with neighbouring characters, varied ink,
paper, blur and noise). Its pool1..pool3 features then describe strokes and
glyph shapes at the scale the inpainter works at.
"""

import string
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from ..data.fonts import FONTS, load_font
from ..nn.features import DEFAULT_TEXT_FEATURES, TextFeatureConfig, TextFeatureNet, save_text_features
from ..textscale import TEXT_HEIGHT

__all__ = ["CHARACTERS", "render_glyphs", "train_text_features"]

CHARACTERS = string.digits + string.ascii_letters + string.punctuation  # the 94 printable ASCII classes


def render_glyph(rng: np.random.Generator, crop: int) -> tuple[np.ndarray, int]:
    """One (crop, crop) uint8 grey image centred on a random character, and its class."""
    label = int(rng.integers(len(CHARACTERS)))
    left, right = (CHARACTERS[i] if rng.random() < 0.8 else " " for i in rng.integers(len(CHARACTERS), size=2))
    size = int(rng.integers(round(TEXT_HEIGHT * 0.75), round(TEXT_HEIGHT * 1.3) + 1))
    font = load_font(FONTS[rng.integers(len(FONTS))], size)
    paper, ink = rng.uniform(0.55, 1.0) * 255, rng.uniform(0.0, 0.45) * 255
    if rng.random() < 0.2:  # light text on a dark ground
        paper, ink = 255 - paper, 255 - ink
    image = Image.new("L", (crop, crop), int(paper))
    # put the middle glyph's ink centre at the crop centre, give or take a few pixels
    x0, _, x1, _ = font.getbbox(CHARACTERS[label], anchor="ls")
    x = crop / 2 + rng.normal(0, 1.5) - font.getlength(left) - (x0 + x1) / 2
    baseline = crop / 2 + 0.35 * size + rng.normal(0, 1.5)
    ImageDraw.Draw(image).text((x, baseline), left + CHARACTERS[label] + right, font=font, fill=int(ink), anchor="ls")
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.0)))
    pixels = np.asarray(image, np.float32) + rng.normal(0, rng.uniform(0, 12), (crop, crop))
    return np.clip(pixels, 0, 255).astype(np.uint8), label


def render_glyphs(n: int, seed: int, crop: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` glyph crops (n, crop, crop) uint8 and their labels (n,), the same for the same seed."""
    rng = np.random.default_rng(seed)
    images, labels = zip(*(render_glyph(rng, crop) for _ in tqdm(range(n), desc="rendering glyphs", leave=False)))
    return torch.from_numpy(np.stack(images)), torch.tensor(labels)


def as_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W) grey -> float (B, 3, H, W) in [0, 1], the feature net's input."""
    return (images.float() / 255).unsqueeze(1).expand(-1, 3, -1, -1)


@torch.no_grad()
def accuracy(model: TextFeatureNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    model.eval()
    correct = sum((model.classify(as_batch(images[i:i + batch_size])).argmax(1) == labels[i:i + batch_size]).sum().item()
                  for i in range(0, len(images), batch_size))
    return correct / len(images)


def train_text_features(out: str | Path = DEFAULT_TEXT_FEATURES, steps: int = 4000, batch_size: int = 128,
                        lr: float = 2e-3, train_size: int = 120_000, val_size: int = 5000, seed: int = 0,
                        config: TextFeatureConfig | None = None) -> dict[str, float]:
    """Train a TextFeatureNet as a character classifier and save it to `out`.

    Returns the validation accuracy and the seconds spent. The training set is
    rendered once (each crop is seen about steps * batch_size / train_size times,
    with a fresh random shift); the validation set comes from another seed.
    """
    config = config or TextFeatureConfig()
    torch.manual_seed(seed)
    start = time.perf_counter()
    train_x, train_y = render_glyphs(train_size, seed, config.crop + 4)  # 2-pixel margin for random shifts
    val_x, val_y = render_glyphs(val_size, seed + 1_000_003, config.crop + 4)
    val_x = val_x[:, 2:-2, 2:-2]
    model = TextFeatureNet(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    bar = tqdm(range(steps), desc="train features")
    for step in bar:
        index = torch.randint(train_size, (batch_size,))
        dy, dx = torch.randint(5, (2,)).tolist()
        images = train_x[index, dy:dy + config.crop, dx:dx + config.crop]
        loss = F.cross_entropy(model.classify(as_batch(images)), train_y[index], label_smoothing=0.05)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    result = {"val_accuracy": accuracy(model, val_x, val_y), "seconds": time.perf_counter() - start}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_text_features(out, model.eval(), val_accuracy=f"{result['val_accuracy']:.4f}", steps=str(steps), seed=str(seed))
    return result
