"""`ocr-restore train inpainter`: train the PConv U-Net in the two phases of Liu et al. (ECCV 2018).

Phase 1 trains everything at lr 2e-4 with BatchNorm on; phase 2 fine-tunes at
lr 5e-5 with the encoder's BatchNorm frozen (holes bias its batch statistics).
Crops come on the fly from the data engine, rendered or cut from folders of real
clean images, at the normalised text height, mixed in the shares the config gives.
Batch i is drawn from an RNG seeded by (seed, i), so it is the same whichever
worker makes it and however often the run is stopped; `out_dir/last.pt` then
resumes exactly.

With loss_weights.ctc > 0 (issue 21, part 2b), each step also draws `ctc_batch` single text lines
with their transcripts (data.dataset.line_source, from an RNG seeded by (seed, i, 1)), and a frozen
pretrained recognizer (EasyOCR's English CRNN, nn/recognizer.py, the `train` extra) reads the
model's composite of them: its CTC loss, letter case folded, is added to the pixel and feature terms
of the usual batch. The sub-batch goes through the U-Net in a forward of its own (its crops have
another size), so BatchNorm sees its statistics in training mode too. `perceptual="crnn"` takes the
same recognizer's conv features for the perceptual and style terms (part 2a).

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

from ..data.dataset import LINE_CROP, MixedCrops, RenderedLines, crop_source, fixed_set, line_source
from ..nn.coverage import coverage
from ..nn.features import load_feature_net
from ..nn.losses import InpaintingLoss, LossWeights, hole_psnr, ssim
from ..nn.pconv_unet import CONFIGS, PConvUNet, load_pconv, save_pconv
from .loop import CsvLog, Phase, checkpoint_state, phase_at, resolve_device, resume, run_steps, save_checkpoint

__all__ = ["InpainterTraining", "StepBatches", "collate", "train_inpainter"]

VAL_SEED = 1234  # the validation crops: a stream of their own, apart from every training seed
TERMS = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv", "coverage")
CTC_TERMS = ("ctc", "ctc_cer")  # logged only by runs with the CTC term, so older runs' logs keep their columns
LINE_STREAM = 1  # step i's text lines come from an RNG seeded by (seed, i, LINE_STREAM), apart from its crops
VAL_LINES = 32  # rendered lines of the fixed validation set of the CTC term (at most val_size)


@dataclass
class InpainterTraining:
    """Everything that makes a run. Fields above `steps_phase1` define the run (`identity`; the CTC settings
    only while the CTC term is on): resuming with any of them changed would splice two runs, and is refused.
    The rest may change between resumes."""

    config: str = "default"  # a name in nn.pconv_unet.CONFIGS (with `init`, that file's config)
    data: tuple[str, ...] = ("synthetic",)  # crop sources, "synthetic" or a folder, each SOURCE[:SHARE]
    perceptual: str = "text_features"  # the feature net of the perceptual and style terms: "text_features",
    # "crnn" (the pretrained recognizer's conv features), a torchvision VGG-16 state dict's path, or "none"
    loss_weights: LossWeights = field(default_factory=LossWeights)
    batch_size: int = 16
    crop: tuple[int, int] = (64, 128)
    scale_jitter: float = 0.1  # crops' em lies within TEXT_HEIGHT * exp(+-this): robust to text-height estimates that far off
    tight_share: float = 0.0  # share of rendered crops drawn at their own extent (a word, a line) and fitted to the crop
    seed: int = 0
    init: str = ""  # a weights file to fine-tune instead of random weights
    # the CTC term, used when loss_weights.ctc > 0: `ctc_batch` text lines per step, `ctc_crop` (H, W) each at
    # the text height, from `ctc_data`: "synthetic" (rendered lines) or folders with labels.tsv, each SOURCE[:SHARE]
    ctc_batch: int = 4
    ctc_data: tuple[str, ...] = ("synthetic",)
    ctc_crop: tuple[int, int] = LINE_CROP
    steps_phase1: int = 16000
    steps_phase2: int = 4000
    lr1: float = 2e-4
    lr2: float = 5e-5
    val_every: int = 1000
    val_size: int = 64
    ckpt_every: int = 500
    device: str = "auto"
    num_workers: int = 1

    # fields added after runs had begun, which count in `identity` only while the CTC term is on
    CTC_FIELDS = ("ctc_batch", "ctc_data", "ctc_crop")

    def __post_init__(self):
        self.data, self.crop = tuple(self.data), tuple(self.crop)
        self.ctc_data, self.ctc_crop = tuple(self.ctc_data), tuple(self.ctc_crop)
        if self.ctc_on and self.ctc_batch < 1:
            raise ValueError(f"a CTC weight of {self.loss_weights.ctc} needs ctc_batch >= 1 (lines per step)")

    @property
    def ctc_on(self) -> bool:
        return self.loss_weights.ctc > 0

    def identity(self) -> dict:
        """The fields above `steps_phase1`. With the CTC term off, its settings (CTC_FIELDS and the weight
        loss_weights.ctc) are left out: they change nothing then, and a checkpoint written before they existed
        resumes. With it on they are all in, so turning it on or off, or changing any of them, is refused
        (`loss_weights` is compared whole, with or without its `ctc`)."""
        names = [f.name for f in dataclasses.fields(self)]
        run = {k: v for k, v in dataclasses.asdict(self).items() if names.index(k) < names.index("steps_phase1")}
        if not self.ctc_on:
            for key in self.CTC_FIELDS:
                del run[key]
            del run["loss_weights"]["ctc"]
        return run


def collate(items: list[dict]) -> dict:
    """Items' tensors stacked into (B, C, H, W); other values (transcripts) as lists."""
    return {key: torch.stack([item[key] for item in items]) if isinstance(value, torch.Tensor)
            else [item[key] for item in items] for key, value in items[0].items()}


class StepBatches(Dataset):
    """Batch `step` of a crop source with a `sample(rng)` method, drawn from an RNG seeded by (seed, step).

    With a line source `lines` and `line_batch` > 0, the batch also holds "ctc": that many of its items
    (tensors and transcripts, `text`), drawn from an RNG seeded by (seed, step, LINE_STREAM)."""

    def __init__(self, crops, batch_size: int, seed: int, lines=None, line_batch: int = 0):
        self.crops, self.batch_size, self.seed = crops, batch_size, seed
        self.lines, self.line_batch = lines, line_batch

    def __getitem__(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, step])
        batch = collate([self.crops.sample(rng) for _ in range(self.batch_size)])
        if self.lines is not None and self.line_batch:
            rng = np.random.default_rng([self.seed, step, LINE_STREAM])
            batch["ctc"] = collate([self.lines.sample(rng) for _ in range(self.line_batch)])
        return batch


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


def ctc_of(model: PConvUNet, recognizer, lines: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(CTC loss, composite): the recognizer's reading of the model's composite of a batch of text lines
    against their transcripts, letter case folded (SROIE's transcripts are upper case, its receipts not)."""
    from ..nn.recognizer import reading_loss

    image, known, _ = model_inputs(lines, device)
    composite = model.composite(image, known, model.predict(image, known).output)
    return reading_loss(recognizer, composite, lines["text"], fold_case=True), composite


@torch.no_grad()
def validate(model: PConvUNet, loss_fn: InpaintingLoss, val: dict, device, chunk: int = 32,
             lines: dict | None = None, recognizer=None) -> dict[str, float]:
    """Loss terms, hole PSNR and SSIM of the composite over the fixed validation set; with `lines` (and the
    recognizer), the CTC loss and the recognizer's case-folded CER on their composites as well."""
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
    metrics = {key: value / n for key, value in sums.items()}
    if lines is not None:
        from ..metrics import edit_distance
        from ..nn.recognizer import decode, prepare

        ctc, errors, chars, m = 0.0, 0, 0, len(lines["text"])
        for start in range(0, m, chunk):
            part = {k: v[start:start + chunk] for k, v in lines.items()}
            loss, composite = ctc_of(model, recognizer, part, device)
            ctc += loss.item() * len(part["text"])
            reads = decode(recognizer(prepare(composite.clamp(0, 1))))
            errors += sum(edit_distance(t.lower(), r.lower()) for t, r in zip(part["text"], reads))
            chars += sum(len(t) for t in part["text"])
        metrics.update(ctc=ctc / m, ctc_cer=errors / max(chars, 1))
    model.train()
    return metrics


def fixed_lines(n: int, crop: tuple[int, int], charset: str | None) -> dict:
    """`n` rendered, occluded text lines with their transcripts, collated: the same on every call."""
    rng = np.random.default_rng([VAL_SEED, LINE_STREAM])
    source = RenderedLines(crop=crop, charset=charset)
    return collate([source.sample(rng) for _ in range(n)])


def _recognizer_and_features(cfg: InpainterTraining, device):
    """(recognizer or None, feature net or None) as the config asks. The recognizer (the `train` extra) is
    imported and loaded only when the CTC term or `perceptual="crnn"` wants it."""
    recognizer = None
    if cfg.ctc_on or cfg.perceptual == "crnn":
        from ..nn.recognizer import RecognizerFeatures, load_recognizer

        recognizer = load_recognizer(device)
    if cfg.perceptual == "none":
        return recognizer, None
    if cfg.perceptual == "crnn":
        return recognizer, RecognizerFeatures(recognizer)
    return recognizer, load_feature_net(None if cfg.perceptual == "text_features" else cfg.perceptual).to(device)


def train_inpainter(out_dir: str | Path, cfg: InpainterTraining | None = None) -> dict[str, float]:
    """Train a PConvUNet into `out_dir`, resuming from `out_dir/last.pt` when it is there.

    Returns the final validation metrics. Ctrl-C or `kill` saves a checkpoint and raises KeyboardInterrupt.
    Step counts may change between resumes, e.g. to end a run sooner.
    """
    cfg = cfg or InpainterTraining()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    recognizer, feature_net = _recognizer_and_features(cfg, device)
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
    lines = val_lines = None
    if cfg.ctc_on:
        from ..nn.recognizer import ALPHABET

        line_sources = [line_source(spec, crop=cfg.ctc_crop, scale_jitter=cfg.scale_jitter, charset=ALPHABET)
                        for spec in cfg.ctc_data]
        lines = MixedCrops([s for s, _ in line_sources], [w for _, w in line_sources])
        val_lines = fixed_lines(min(cfg.val_size, VAL_LINES), cfg.ctc_crop, ALPHABET)
        meter.setdefault("ctc", 0.0)
    loader = DataLoader(StepBatches(crops, cfg.batch_size, cfg.seed, lines, cfg.ctc_batch if cfg.ctc_on else 0),
                        batch_size=None, sampler=range(start, total),
                        num_workers=cfg.num_workers, worker_init_fn=_ignore_interrupts)
    val = fixed_set(cfg.val_size, seed=VAL_SEED, crop=cfg.crop)
    log = CsvLog(out_dir / "log.csv", resume_step=start)
    terms_logged = TERMS + (CTC_TERMS if cfg.ctc_on else ())

    clock = {"since": time.perf_counter(), "steps": 0}  # throughput of this process since the last validation

    def step(i: int, batch) -> dict[str, float]:
        phase = phase_at(phases, i)
        if phase is phases[1] and not model.encoder_bn_frozen:
            model.freeze_encoder_bn()
        for group in optimizer.param_groups:
            group["lr"] = phase.lr
        image, known, target = model_inputs(batch, device)
        prediction, loss, terms = loss_of(model, loss_fn, image, known, target)
        if cfg.ctc_on:
            terms["ctc"], _ = ctc_of(model, recognizer, batch["ctc"], device)
            loss = loss + cfg.loss_weights.ctc * terms["ctc"]
            meter["ctc"] += terms["ctc"].item()
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
        metrics = validate(model, loss_fn, val, device, lines=val_lines, recognizer=recognizer)
        steps = max(meter["steps"], 1)
        log.write({"step": done, "phase": phase_at(phases, done - 1).name, "lr": phase_at(phases, done - 1).lr,
                   "train_loss": meter["loss"] / steps, "train_hole_psnr": meter["hole_psnr"] / steps,
                   **({"train_ctc": meter["ctc"] / steps} if cfg.ctc_on else {}),
                   **{f"val_{k}": metrics.get(k, "") for k in ("loss", "hole_psnr", "ssim", *terms_logged)},
                   "samples_per_s": samples_per_s, "crops_seen": done * cfg.batch_size})
        meter.update({"loss": 0.0, "hole_psnr": 0.0, "steps": 0, **({"ctc": 0.0} if cfg.ctc_on else {})})
        model.eval()
        with torch.no_grad():
            for name, images in (("step", val), ("lines", val_lines)):
                if images is not None:
                    image, known, target = model_inputs({k: v[:6] for k, v in images.items()}, device)
                    _save_samples(out_dir / "samples" / f"{name}_{done:06d}.png", image, known,
                                  model.inpaint(image, known), target)
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
        final = validate(model, loss_fn, val, device, lines=val_lines, recognizer=recognizer)
        if not (out_dir / "pconv.safetensors").is_file():
            save_pconv(out_dir / "pconv.safetensors", model, step=str(total))
    return final
