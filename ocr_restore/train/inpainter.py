"""`ocr-restore train inpainter`: train the PConv U-Net in the two phases of Liu et al. (ECCV 2018).

Phase 1 trains everything at lr 2e-4 with BatchNorm on; phase 2 fine-tunes at
lr 5e-5 with the encoder's BatchNorm frozen (holes bias its batch statistics).
Crops come on the fly from the data engine, rendered or cut from folders of real
clean images, at the normalised text height, mixed in the shares the config gives.
Batch i is drawn from an RNG seeded by (seed, i), so it is the same whichever
worker makes it and however often the run is stopped; `out_dir/last.pt` then
resumes exactly.

Files in out_dir: last.pt (checkpoint), log.csv (training and validation
metrics), samples/step_*.png (input, composite, truth of validation crops),
pconv.safetensors (the weights, updated at each validation and at the end) and
snapshots/step_*.safetensors (kept at each validation, to choose among on tuning sets).
"""

import dataclasses
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.dataset import MixedCrops, crop_source, fixed_set
from ..nn.coverage import coverage
from ..nn.features import load_feature_net
from ..nn.losses import InpaintingLoss, LossWeights, hole_psnr, ssim
from ..nn.pconv_unet import CONFIGS, PConvUNet, load_pconv, save_pconv
from .loop import CsvLog, Phase, checkpoint_state, phase_at, resolve_device, resume, run_steps, save_checkpoint

__all__ = ["InpainterTraining", "StepBatches", "train_inpainter"]

VAL_SEED = 1234  # the validation crops: a stream of their own, apart from every training seed
TERMS = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv", "coverage")


@dataclass
class InpainterTraining:
    """Everything that makes a run. Fields above `steps_phase1` define the run: resuming with any of
    them changed would splice two runs, and is refused. The rest may change between resumes."""

    config: str = "default"  # a name in nn.pconv_unet.CONFIGS (with `init`, that file's config)
    data: tuple[str, ...] = ("synthetic",)  # crop sources, "synthetic" or a folder, each SOURCE[:SHARE]
    perceptual: str = "text_features"  # the feature net of the perceptual and style terms: "text_features",
    # a torchvision VGG-16 state dict's path, or "none" to leave those terms out
    loss_weights: LossWeights = field(default_factory=LossWeights)
    batch_size: int = 16
    crop: tuple[int, int] = (64, 128)
    scale_jitter: float = 0.1  # crops' em lies within TEXT_HEIGHT * exp(+-this): robust to text-height estimates that far off
    tight_share: float = 0.0  # share of rendered crops drawn at their own extent (a word, a line) and fitted to the crop
    seed: int = 0
    init: str = ""  # a weights file to fine-tune instead of random weights
    steps_phase1: int = 16000
    steps_phase2: int = 4000
    lr1: float = 2e-4
    lr2: float = 5e-5
    val_every: int = 1000
    val_size: int = 64
    ckpt_every: int = 500
    device: str = "auto"
    num_workers: int = 1

    def __post_init__(self):
        self.data, self.crop = tuple(self.data), tuple(self.crop)

    def identity(self) -> dict:
        names = [f.name for f in dataclasses.fields(self)]
        return {k: v for k, v in dataclasses.asdict(self).items() if names.index(k) < names.index("steps_phase1")}


class StepBatches(Dataset):
    """Batch `step` of a crop source with a `sample(rng)` method, drawn from an RNG seeded by (seed, step)."""

    def __init__(self, crops, batch_size: int, seed: int):
        self.crops, self.batch_size, self.seed = crops, batch_size, seed

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        items = [self.crops.sample(rng) for _ in range(self.batch_size)]
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}  # (B, C, H, W) each


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device):
    """(occluded image, known mask, clean target). An erasure's whole shape is a hole, not only
    the ink it removed, or the model would learn glyph shapes from the hole's outline."""
    known = 1 - torch.maximum(batch["hole"], batch["paper_hole"])  # (B, 1, H, W), 1 = known
    return batch["occluded"].to(device), known.to(device), batch["clean"].to(device)


def loss_of(model: PConvUNet, loss_fn: InpaintingLoss, image, known, target):
    """(prediction, total, terms). A glyph-first model is also taught the clean image's ink coverage,
    measured against the same paper and ink colours it composes with."""
    prediction = model.predict(image, known)
    alpha_target = None if prediction.fields is None else coverage(target, prediction.fields)
    total, terms = loss_fn(prediction.output, target, known, prediction.alpha_logit, alpha_target)
    return prediction, total, terms


def _ignore_interrupts(worker_id: int) -> None:
    # Ctrl-C reaches the whole process group; the main process handles it after a whole step
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _save_samples(path: Path, image, known, composite, target, n: int = 6) -> None:
    """A grid: one row per crop of input (holes white), composite and truth."""
    rows = [torch.cat([image[i] * known[i] + (1 - known[i]), composite[i], target[i]], 2) for i in range(min(n, len(image)))]
    grid = (torch.cat(rows, 1).permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


@torch.no_grad()
def validate(model: PConvUNet, loss_fn: InpaintingLoss, val: dict, device, chunk: int = 32) -> dict[str, float]:
    """Loss terms, hole PSNR and SSIM of the composite over the fixed validation set."""
    model.eval()
    sums, n = {}, len(val["clean"])
    for start in range(0, n, chunk):
        image, known, target = model_inputs({k: v[start:start + chunk] for k, v in val.items()}, device)
        prediction, loss, terms = loss_of(model, loss_fn, image, known, target)
        composite = model.composite(image, known, prediction.output).clamp(0, 1)
        values = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()},
                  "hole_psnr": hole_psnr(composite, target, known), "ssim": ssim(composite, target)}
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * len(image)
    model.train()
    return {key: value / n for key, value in sums.items()}


def train_inpainter(out_dir: str | Path, cfg: InpainterTraining | None = None) -> dict[str, float]:
    """Train a PConvUNet into `out_dir`, resuming from `out_dir/last.pt` when it is there.

    Returns the final validation metrics. Ctrl-C or `kill` saves a checkpoint and raises KeyboardInterrupt.
    Step counts may change between resumes, e.g. to end a run sooner.
    """
    cfg = cfg or InpainterTraining()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    feature_net = None if cfg.perceptual == "none" else load_feature_net(
        None if cfg.perceptual == "text_features" else cfg.perceptual).to(device)
    loss_fn = InpaintingLoss(feature_net, cfg.loss_weights).to(device)
    phases = [Phase("1", cfg.steps_phase1, cfg.lr1), Phase("2 (encoder BN frozen)", cfg.steps_phase2, cfg.lr2)]
    total = cfg.steps_phase1 + cfg.steps_phase2
    torch.manual_seed(cfg.seed)
    if cfg.init:
        model = load_pconv(cfg.init, device).train()
    else:
        model = PConvUNet(CONFIGS[cfg.config]).to(device).train()
    run = cfg.identity()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr1)
    meter = {"loss": 0.0, "hole_psnr": 0.0, "steps": 0}  # train means since the last log row, kept across resumes
    ckpt_path = out_dir / "last.pt"
    checkpoint = resume(ckpt_path, run, model, optimizer)
    start = 0
    if checkpoint is not None:
        start, meter = checkpoint["step"], checkpoint["meter"]
        if checkpoint["encoder_bn_frozen"]:
            model.freeze_encoder_bn()

    sources = [crop_source(spec, crop=cfg.crop, seed=cfg.seed, scale_jitter=cfg.scale_jitter, tight_share=cfg.tight_share)
               for spec in cfg.data]
    crops = MixedCrops([s for s, _ in sources], [w for _, w in sources])
    loader = DataLoader(StepBatches(crops, cfg.batch_size, cfg.seed), batch_size=None, sampler=range(start, total),
                        num_workers=cfg.num_workers, worker_init_fn=_ignore_interrupts)
    val = fixed_set(cfg.val_size, seed=VAL_SEED, crop=cfg.crop)
    log = CsvLog(out_dir / "log.csv", resume_step=start)

    clock = {"since": time.perf_counter(), "steps": 0}  # throughput of this process since the last validation

    def step(i: int, batch) -> dict[str, float]:
        phase = phase_at(phases, i)
        if phase is phases[1] and not model.encoder_bn_frozen:
            model.freeze_encoder_bn()
        for group in optimizer.param_groups:
            group["lr"] = phase.lr
        image, known, target = model_inputs(batch, device)
        prediction, loss, terms = loss_of(model, loss_fn, image, known, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        psnr = hole_psnr(model.composite(image, known, prediction.output.detach()), target, known)
        meter["loss"] += loss.item()
        meter["hole_psnr"] += 0.0 if math.isnan(psnr) else psnr
        meter["steps"] += 1
        clock["steps"] += 1
        return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}, "psnr": psnr}

    def validation(done: int) -> dict[str, float]:
        samples_per_s = clock["steps"] * cfg.batch_size / (time.perf_counter() - clock["since"])
        metrics = validate(model, loss_fn, val, device)
        steps = max(meter["steps"], 1)
        log.write({"step": done, "phase": phase_at(phases, done - 1).name, "lr": phase_at(phases, done - 1).lr,
                   "train_loss": meter["loss"] / steps, "train_hole_psnr": meter["hole_psnr"] / steps,
                   **{f"val_{k}": metrics.get(k, "") for k in ("loss", "hole_psnr", "ssim", *TERMS)},
                   "samples_per_s": samples_per_s, "crops_seen": done * cfg.batch_size})
        meter.update({"loss": 0.0, "hole_psnr": 0.0, "steps": 0})
        model.eval()
        with torch.no_grad():
            image, known, target = model_inputs({k: v[:6] for k, v in val.items()}, device)
            _save_samples(out_dir / "samples" / f"step_{done:06d}.png", image, known, model.inpaint(image, known), target)
        model.train()
        meta = {"step": str(done), "val_hole_psnr": f"{metrics['hole_psnr']:.3f}"}
        save_pconv(out_dir / "pconv.safetensors", model, **meta)
        (out_dir / "snapshots").mkdir(exist_ok=True)
        save_pconv(out_dir / "snapshots" / f"step_{done:06d}.safetensors", model, **meta)
        clock.update(since=time.perf_counter(), steps=0)
        return metrics

    final = {}

    def periodic(done: int) -> None:
        if done % cfg.val_every == 0 or done == total:
            final.update(validation(done))

    def save(done: int) -> None:
        save_checkpoint(ckpt_path, checkpoint_state(done, model, optimizer, run, meter=meter,
                                                    encoder_bn_frozen=model.encoder_bn_frozen))

    run_steps(start, total, loader, step, save, cfg.ckpt_every, hooks=((1, periodic),), samples_per_step=cfg.batch_size,
              desc=f"train inpainter ({device.type})")
    if not final:  # resumed a finished run
        final = validate(model, loss_fn, val, device)
        if not (out_dir / "pconv.safetensors").is_file():
            save_pconv(out_dir / "pconv.safetensors", model, step=str(total))
    return final
