"""Train the occlusion detector: `ocr-restore train detector`.

Training: a SegUNet learns, on the data engine's synthetic crops at the
normalised text scale, two maps: the pixels an occluder changed and the area of
paper-coloured shapes where they can be seen, each with BCE + soft Dice (recall
matters as much as IoU, and paper shapes are rare). A share of the crops is left
clean so that text alone is not flagged. A run starts from random weights or,
to fine-tune, from a weights file (`init`), which a `config` of fewer channels
narrows first (`nn.seg_unet.narrowed`): a faster model that starts from what
the wider one learnt.
Sample i of the stream is drawn from its own seed, so a run resumes exactly
where its checkpoint (out_dir/last.pt, written atomically every ckpt_every steps
and on Ctrl-C or kill, after the current step) left it: a resumed run is
bit-identical to an uninterrupted one on the same device. The step loop,
checkpoints and log are train/loop.py's, shared with the inpainter. Its
evaluation is evaluate/detector.py's.
"""

import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data import KINDS, fixed_set
from ..data.dataset import MixedCrops, crop_source
from ..nn.seg_unet import CONFIGS, SegUNet, load_seg_unet, narrowed, save_seg_unet
from ..textscale import MIN_INPUT
from .loop import CsvLog, checkpoint_state, resolve_device, resume, run_steps, save_checkpoint

__all__ = ["detector_target", "DetectorCrops", "detector_loss", "validate", "DetectorTraining", "train_detector"]

WARMUP = 200  # steps of linear learning-rate warm-up before the cosine decay
# crops' em within TEXT_HEIGHT * exp(+-0.7): em estimates on occluded images err by up to exp(+-0.4), and
# the detector's context view (detect.CONTEXT_SCALE) sees text at half the normalised em
SCALE_JITTER = 0.7
# half the crops are words, lines and paragraphs at their own extent, as users' crops come: drawn only
# on a canvas wider than the text, the model took the coloured ground of a real word crop for a shape
TIGHT_SHARE = 0.5
PAPER_MARGIN = 6  # px (a quarter em): how far a paper-coloured shape is detectable beyond the ink it erased


def detector_target(hole: torch.Tensor, paper_area: torch.Tensor) -> torch.Tensor:
    """The two maps to learn, (..., 2, H, W) from (..., 1, H, W): the hole (pixels an occluder
    changed) and the visible part of paper-coloured shapes, the ink they erased and PAPER_MARGIN px
    around it within the shape. Over blank paper such a shape cannot be seen, and a model taught
    to find it there learns to paint blobs on clean pages."""
    erased = hole * paper_area
    # the square's maximum as a column's then a row's: the same map, in a third of the time
    near_erased = F.max_pool2d(erased, (2 * PAPER_MARGIN + 1, 1), stride=1, padding=(PAPER_MARGIN, 0))
    near_erased = F.max_pool2d(near_erased, (1, 2 * PAPER_MARGIN + 1), stride=1, padding=(0, PAPER_MARGIN))
    return torch.cat([hole, near_erased * paper_area], -3)


class DetectorCrops(Dataset):
    """Training pairs (occluded image, target) where item i is drawn from the seed [seed, i].

    The target is `detector_target`'s. With probability `clean_share` the item
    is the clean crop with an empty target.
    """

    def __init__(self, crops, seed: int, clean_share: float):
        self.crops, self.seed, self.clean_share = crops, seed, clean_share

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        item = self.crops.sample(rng)
        target = detector_target(item["hole"], item["paper_hole"])
        if rng.random() < self.clean_share:
            return item["clean"], torch.zeros_like(target)
        return item["occluded"], target


def _bce_dice(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """BCE plus soft Dice over the whole batch: Dice weighs a missed small shape as much as a large one."""
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * truth).sum() + 1) / (p.sum() + truth.sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, truth) + dice


def detector_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice on both maps, the occluder map (B, 0) and the rarer paper map (B, 1)."""
    return _bce_dice(logits[:, 0], target[:, 0]) + _bce_dice(logits[:, 1], target[:, 1])


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


@torch.inference_mode()
def validate(
    model: SegUNet, val: dict[str, torch.Tensor], device: torch.device, batch_size: int = 64
) -> dict[str, float]:
    """Loss and pixel metrics at threshold 0.5 on a fixed set of crops, and pixels flagged on their clean versions
    by either map (the pipeline masks both)."""
    was_training = model.training
    model.eval()
    target = detector_target(val["hole"], val["paper_hole"])  # (N, 2, H, W)
    counts = np.zeros(7)  # tp, fp, fn, paper tp, paper fp + fn, flagged on clean, clean pixels
    loss = 0.0
    for i in range(0, len(target), batch_size):
        t = target[i : i + batch_size].to(device)
        logits = model(val["occluded"][i : i + batch_size].to(device))
        loss += detector_loss(logits, t).item() * len(t)
        predicted, truth = logits > 0, t > 0.5
        hit, wrong = predicted & truth, predicted ^ truth
        flagged = (model(val["clean"][i : i + batch_size].to(device)) > 0).any(1)
        counts += [hit[:, 0].sum().item(), (wrong & predicted)[:, 0].sum().item(), (wrong & truth)[:, 0].sum().item(),
                   hit[:, 1].sum().item(), wrong[:, 1].sum().item(), flagged.sum().item(), flagged.numel()]
    model.train(was_training)
    tp, fp, fn, paper_tp, paper_wrong, flagged, pixels = counts
    return {
        "val_loss": loss / len(target),
        "iou": _ratio(tp, tp + fp + fn),
        "recall": _ratio(tp, tp + fn),
        "precision": _ratio(tp, tp + fp),
        "paper_iou": _ratio(paper_tp, paper_tp + paper_wrong),
        "fp_clean_px": flagged / pixels,
    }


def _learning_rate(step: int, steps: int, lr: float) -> float:
    """Linear warm-up, then cosine decay to a tenth of `lr`."""
    if step < WARMUP:
        return lr * (step + 1) / WARMUP
    progress = min(1.0, (step - WARMUP) / max(1, steps - WARMUP))
    return lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))


@dataclass
class DetectorTraining:
    """Everything that makes a run. Fields above `val_every` define the run (the learning-rate schedule
    follows `steps`): resuming with any of them changed is refused. The rest may change between resumes."""

    config: str = "default"  # a name in nn.seg_unet.CONFIGS; with `init`, that file's config, or `narrowed` to this one
    data: tuple[str, ...] = ("synthetic",)  # crop sources, "synthetic" or a folder of clean images, each SOURCE[:SHARE]
    steps: int = 6_000
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    kinds: tuple[str, ...] = KINDS  # kinds of rendered text
    crop: tuple[int, int] = MIN_INPUT
    clean_share: float = 0.25  # crops left unoccluded, with an empty target, so that text alone is not flagged
    scale_jitter: float = SCALE_JITTER  # crops' em lies within TEXT_HEIGHT * exp(+-this)
    tight_share: float = TIGHT_SHARE  # rendered crops at the text's own extent, padded or cut to `crop`
    init: str = ""  # a weights file to fine-tune instead of random weights
    val_every: int = 500
    ckpt_every: int = 200
    val_size: int = 256
    device: str = "auto"
    num_workers: int = 0

    def __post_init__(self):
        self.data, self.kinds, self.crop = tuple(self.data), tuple(self.kinds), tuple(self.crop)

    def identity(self) -> dict:
        names = [f.name for f in fields(self)]
        return {k: v for k, v in asdict(self).items() if names.index(k) < names.index("val_every")}


def train_detector(out_dir: str | Path, cfg: DetectorTraining | None = None) -> Path:
    """Train a SegUNet detector in `out_dir`, resuming from out_dir/last.pt if it is there.

    Writes last.pt, log.csv (one row per validation) and detector.safetensors
    (after every validation and at the end), whose path it returns.
    """
    cfg = cfg or DetectorTraining()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if cfg.init:  # a file keeps its own config unless a narrower one is named
        model = load_seg_unet(cfg.init, device)
        model = (model if cfg.config == "default" else narrowed(model, CONFIGS[cfg.config].widths)).train()
    else:
        model = SegUNet(CONFIGS[cfg.config]).to(device)
    run = cfg.identity()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    checkpoint_path, weights_path = out_dir / "last.pt", out_dir / "detector.safetensors"
    checkpoint = resume(checkpoint_path, run, model, optimizer)
    start = checkpoint["step"] if checkpoint else 0
    log = CsvLog(out_dir / "log.csv", start)

    crops = dict(crop=cfg.crop, scale_jitter=cfg.scale_jitter, tight_share=cfg.tight_share)
    val = fixed_set(cfg.val_size, seed=cfg.seed + 1_000_003, kinds=cfg.kinds, **crops)
    sources = [crop_source(spec, seed=cfg.seed, kinds=cfg.kinds, **crops) for spec in cfg.data]
    loader = DataLoader(
        DetectorCrops(MixedCrops([s for s, _ in sources], [w for _, w in sources]), cfg.seed, cfg.clean_share),
        batch_size=cfg.batch_size,
        sampler=range(start * cfg.batch_size, cfg.steps * cfg.batch_size),
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
    )
    print(f"SegUNet {model.num_parameters():,} parameters on {device}; {model.config}")
    started, smooth = time.perf_counter(), {}

    def train_step(step: int, batch) -> dict[str, float]:
        x, target = (t.to(device, non_blocking=True) for t in batch)
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, cfg.steps, cfg.lr)
        logits = model(x)
        loss = detector_loss(logits, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            predicted, truth = logits[:, 0] > 0, target[:, 0] > 0.5
            iou = _ratio((predicted & truth).sum().item(), (predicted | truth).sum().item())
        smooth["loss"] = 0.98 * smooth.get("loss", loss.item()) + 0.02 * loss.item()
        return {"loss": smooth["loss"], "iou": iou}

    def save(step: int) -> None:
        save_checkpoint(checkpoint_path, checkpoint_state(step, model, optimizer, run))

    def validate_and_export(step: int) -> None:
        row = {"step": step, "seconds": round(time.perf_counter() - started, 1), "lr": optimizer.param_groups[0]["lr"],
               "loss": smooth.get("loss", float("nan")), **validate(model, val, device)}
        log.write(row)
        tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        save_seg_unet(weights_path, model, step=str(step))

    model.train()
    run_steps(start, cfg.steps, loader, train_step, save, cfg.ckpt_every, hooks=((cfg.val_every, validate_and_export),),
              samples_per_step=cfg.batch_size, desc="train detector")
    if start < cfg.steps and cfg.steps % cfg.val_every:
        validate_and_export(cfg.steps)
    if not weights_path.exists():  # the run was already complete when resumed
        save_seg_unet(weights_path, model, step=str(cfg.steps))
    return weights_path


