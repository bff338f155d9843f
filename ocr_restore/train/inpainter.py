"""`ocr-restore train inpainter`: train the PConv U-Net in the two phases of Liu et al. (ECCV 2018).

Phase 1 trains everything at lr 2e-4 with BatchNorm on; phase 2 fine-tunes at
lr 5e-5 with the encoder's BatchNorm frozen (holes bias its batch statistics).
Crops come on the fly from the data engine, synthetic or cut from a folder of
the user's clean images, at the normalised text height. Batch i is drawn from an
RNG seeded by (seed, i), so it is the same whichever worker makes it and however
often the run is stopped; `out_dir/last.pt` then resumes exactly.

Files in out_dir: last.pt (checkpoint), log.csv (training and validation
metrics), samples/step_*.png (input, composite, truth of validation crops) and
pconv.safetensors (the weights, updated at each validation and at the end).
"""

import dataclasses
import math
import shutil
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.dataset import FolderCrops, SyntheticCrops, fixed_set
from ..errors import ModelError
from ..nn.features import load_feature_net
from ..nn.losses import InpaintingLoss, LossWeights, hole_psnr, ssim
from ..nn.pconv_unet import CONFIGS, PConvUNet, PConvUNetConfig, load_pconv, save_pconv
from .loop import CsvLog, Phase, load_checkpoint, phase_at, resolve_device, rng_state, run_steps, save_checkpoint, set_rng_state

__all__ = ["StepBatches", "FolderSamples", "train_inpainter"]

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "pconv.safetensors"
VAL_SEED = 1234  # the validation crops: a stream of their own, apart from every training seed
TERMS = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv")


class StepBatches(Dataset):
    """Batch `step` of a crop source with a `sample(rng)` method, drawn from an RNG seeded by (seed, step)."""

    def __init__(self, crops, batch_size: int, seed: int):
        self.crops, self.batch_size, self.seed = crops, batch_size, seed

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        items = [self.crops.sample(rng) for _ in range(self.batch_size)]
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}  # (B, C, H, W) each


class FolderSamples:
    """One crop of a random image of a FolderCrops per `sample(rng)` call, so folder batches can be
    indexed by step like synthetic ones (FolderCrops itself only streams, per worker)."""

    def __init__(self, crops: FolderCrops):
        self.crops = crops

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        while True:  # images where no text is found give no crop
            path = self.crops.paths[rng.integers(len(self.crops.paths))]
            item = next(self.crops._crops(rng, path), None)
            if item is not None:
                return item


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device):
    """(occluded image, known mask, clean target). An erasure's whole shape is a hole, not only
    the ink it removed, or the model would learn glyph shapes from the hole's outline."""
    known = 1 - torch.maximum(batch["hole"], batch["paper_hole"])  # (B, 1, H, W), 1 = known
    return batch["occluded"].to(device), known.to(device), batch["clean"].to(device)


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
        output = model(image, known)
        loss, terms = loss_fn(output, target, known)
        composite = model.composite(image, known, output).clamp(0, 1)
        values = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()},
                  "hole_psnr": hole_psnr(composite, target, known), "ssim": ssim(composite, target)}
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * len(image)
    model.train()
    return {key: value / n for key, value in sums.items()}


def train_inpainter(out_dir: str | Path, steps_phase1: int = 16000, steps_phase2: int = 4000, batch_size: int = 16,
                    lr1: float = 2e-4, lr2: float = 5e-5, config: str | PConvUNetConfig = "default",
                    data: str | Path = "synthetic", vgg_weights: str | Path | None = None, no_perceptual: bool = False,
                    loss_weights: LossWeights | None = None, val_every: int = 1000, val_size: int = 64,
                    ckpt_every: int = 500, seed: int = 0, device: str = "auto", num_workers: int = 1,
                    crop: tuple[int, int] = (64, 128), scale_jitter: float = 0.1, init: str | Path | None = None,
                    ship: bool = False) -> dict[str, float]:
    """Train a PConvUNet into `out_dir`, resuming from `out_dir/last.pt` when it is there.

    data: "synthetic" (rendered docs, receipts and scene text) or a folder of clean images.
    vgg_weights: a torchvision VGG-16 state dict for the perceptual and style terms; without
    it the shipped text feature network is used, and with no_perceptual neither (those terms
    are then left out). scale_jitter: training crops' em lies within TEXT_HEIGHT * exp(+-scale_jitter),
    so the model copes with text-height estimates that far off. init: a weights file to fine-tune
    (its config replaces `config`). ship: copy the final weights to models/pconv.safetensors.
    Returns the final validation metrics. Ctrl-C or `kill` saves a checkpoint and raises KeyboardInterrupt.
    The defaults (20000 steps of 16 crops) take about two hours on two idle CPU cores; step counts
    may change between resumes, e.g. to end a run sooner.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(device)
    feature_net = None if no_perceptual else load_feature_net(vgg_weights).to(device)
    loss_fn = InpaintingLoss(feature_net, loss_weights).to(device)
    phases = [Phase("1", steps_phase1, lr1), Phase("2 (encoder BN frozen)", steps_phase2, lr2)]
    total = steps_phase1 + steps_phase2
    # what makes two runs the same run: resuming with any of it changed would splice two different runs
    torch.manual_seed(seed)
    if init is not None:
        model = load_pconv(init, device).train()
    else:
        model = PConvUNet(CONFIGS[config] if isinstance(config, str) else config).to(device).train()
    run = {"config": dataclasses.asdict(model.config), "seed": seed, "batch_size": batch_size, "data": str(data),
           "crop": list(crop), "perceptual": "none" if no_perceptual else str(vgg_weights or "text_features"),
           "scale_jitter": scale_jitter, "init": str(init or ""), "loss_weights": dataclasses.asdict(loss_fn.weights)}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr1)
    meter = {"loss": 0.0, "hole_psnr": 0.0, "steps": 0}  # train means since the last log row, kept across resumes
    ckpt_path = out_dir / "last.pt"
    checkpoint = load_checkpoint(ckpt_path)
    start = 0
    if checkpoint is not None:
        changed = [k for k in run if checkpoint["run"].get(k) != run[k]]
        if changed:
            raise ModelError(f"{ckpt_path}: a checkpoint of another run (it differs in {', '.join(changed)}); "
                             "choose another output folder or delete the checkpoint to start afresh")
        start = checkpoint["step"]
        model.load_state_dict(checkpoint["model"])
        if checkpoint["encoder_bn_frozen"]:
            model.freeze_encoder_bn()
        optimizer.load_state_dict(checkpoint["optimizer"])
        set_rng_state(checkpoint["rng"])
        meter = checkpoint["meter"]
        print(f"resuming {out_dir} at step {start} of {total}")

    if data == "synthetic":
        crops = SyntheticCrops(crop=crop, seed=seed, scale_jitter=scale_jitter)
    else:
        crops = FolderSamples(FolderCrops(data, crop=crop, seed=seed, scale_jitter=scale_jitter))
    loader = DataLoader(StepBatches(crops, batch_size, seed), batch_size=None, sampler=range(start, total),
                        num_workers=num_workers, worker_init_fn=_ignore_interrupts)
    val = fixed_set(val_size, seed=VAL_SEED, crop=crop)
    log = CsvLog(out_dir / "log.csv", resume_step=start)

    clock = {"since": time.perf_counter(), "steps": 0}  # throughput of this process since the last validation

    def step(i: int, batch) -> dict[str, float]:
        phase = phase_at(phases, i)
        if phase is phases[1] and not model.encoder_bn_frozen:
            model.freeze_encoder_bn()
        for group in optimizer.param_groups:
            group["lr"] = phase.lr
        image, known, target = model_inputs(batch, device)
        output = model(image, known)
        loss, terms = loss_fn(output, target, known)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        psnr = hole_psnr(model.composite(image, known, output.detach()), target, known)
        meter["loss"] += loss.item()
        meter["hole_psnr"] += 0.0 if math.isnan(psnr) else psnr
        meter["steps"] += 1
        clock["steps"] += 1
        return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}, "psnr": psnr}

    def validation(done: int) -> dict[str, float]:
        samples_per_s = clock["steps"] * batch_size / (time.perf_counter() - clock["since"])
        metrics = validate(model, loss_fn, val, device)
        steps = max(meter["steps"], 1)
        log.write({"step": done, "phase": phase_at(phases, done - 1).name, "lr": phase_at(phases, done - 1).lr,
                   "train_loss": meter["loss"] / steps, "train_hole_psnr": meter["hole_psnr"] / steps,
                   **{f"val_{k}": metrics.get(k, "") for k in ("loss", "hole_psnr", "ssim", *TERMS)},
                   "samples_per_s": samples_per_s})
        meter.update({"loss": 0.0, "hole_psnr": 0.0, "steps": 0})
        model.eval()
        with torch.no_grad():
            image, known, target = model_inputs({k: v[:6] for k, v in val.items()}, device)
            _save_samples(out_dir / "samples" / f"step_{done:06d}.png", image, known, model.inpaint(image, known), target)
        model.train()
        save_pconv(out_dir / "pconv.safetensors", model, step=str(done), val_hole_psnr=f"{metrics['hole_psnr']:.3f}")
        clock.update(since=time.perf_counter(), steps=0)
        return metrics

    final = {}

    def periodic(done: int) -> None:
        if done % val_every == 0 or done == total:
            final.update(validation(done))

    def save(done: int) -> None:
        save_checkpoint(ckpt_path, {"step": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "rng": rng_state(), "meter": meter, "run": run,
                                    "encoder_bn_frozen": model.encoder_bn_frozen})

    run_steps(start, total, loader, step, save, ckpt_every, hooks=((1, periodic),), samples_per_step=batch_size,
              desc=f"train inpainter ({device.type})")
    if not final:  # resumed a finished run
        final = validate(model, loss_fn, val, device)
        if not (out_dir / "pconv.safetensors").is_file():
            save_pconv(out_dir / "pconv.safetensors", model, step=str(total))
    if ship:
        SHIPPED.parent.mkdir(exist_ok=True)
        shutil.copyfile(out_dir / "pconv.safetensors", SHIPPED)
    return final
