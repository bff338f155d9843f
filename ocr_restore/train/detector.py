"""Train and evaluate the occlusion detector: `ocr-restore train detector`.

Training: a SegUNet learns, on the data engine's synthetic crops at the
normalised text scale, two maps: the pixels an occluder changed and the area of
paper-coloured shapes where they can be seen, each with BCE + soft Dice (recall
matters as much as IoU, and paper shapes are rare). A share of the crops is left
clean so that text alone is not flagged. A run starts from random weights or,
to fine-tune, from a weights file (`init`).
Sample i of the stream is drawn from its own seed, so a run resumes exactly
where its checkpoint (out_dir/last.pt, written atomically every ckpt_every steps
and on Ctrl-C or kill, after the current step) left it: a resumed run is
bit-identical to an uninterrupted one on the same device. The step loop,
checkpoints and log are train/loop.py's, shared with the inpainter.

Evaluation: `evaluate_detector` scores any Detector on fixed-seed full-size
synthetic images (rendered and occluded, not crops) against the quality bar:
IoU, recall and precision on occluder pixels near text, per text kind, shape
kind, style and colour class, false positives on the clean images, and time.
"""

import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data import KINDS, Occlusion, SyntheticCrops, fixed_set, occlude, render
from ..data.render import otsu_ink
from ..detect import DEFAULT_WEIGHTS, MIN_INPUT, Detector
from ..files import find_images, read_image
from ..nn.seg_unet import CONFIGS, SegUNet, SegUNetConfig, load_seg_unet, save_seg_unet
from .loop import CsvLog, load_checkpoint, resolve_device, run_steps, save_checkpoint

__all__ = ["detector_target", "DetectorCrops", "detector_loss", "validate", "train_detector", "evaluate_detector",
           "false_positives_on_real", "time_page"]

WARMUP = 200  # steps of linear learning-rate warm-up before the cosine decay
# crops' em within TEXT_HEIGHT * exp(+-0.7): em estimates on occluded images err by up to exp(+-0.4), and
# the detector's context view (detect.CONTEXT_SCALE) sees text at half the normalised em
SCALE_JITTER = 0.7
# half the crops are words, lines and paragraphs at their own extent, as users' crops come: drawn only
# on a canvas wider than the text, the model took the coloured ground of a real word crop for a shape
TIGHT_SHARE = 0.5
PAPER_MARGIN = 6  # px (a quarter em): how far a paper-coloured shape is detectable beyond the ink it erased
# grey levels (largest channel) an occluder changed a pixel by: the evaluation's recall per band of them
CHANGE_BANDS = ((1, 8), (9, 16), (17, 32), (33, 64), (65, 255))
# the evaluation's recall per part of the truth: what erasures (paper-coloured and white shapes) changed, the
# faint edge band (the blur's spill, EDGE_BAND px deep, changed by <= EDGE_CHANGE levels), and the rest
ERASURE_COLOURS = ("paper", "white")
EDGE_BAND, EDGE_CHANGE = 2, 32


def detector_target(hole: torch.Tensor, paper_area: torch.Tensor) -> torch.Tensor:
    """The two maps to learn, (..., 2, H, W) from (..., 1, H, W): the hole (pixels an occluder
    changed) and the visible part of paper-coloured shapes, the ink they erased and PAPER_MARGIN px
    around it within the shape. Over blank paper such a shape cannot be seen, and a model taught
    to find it there learns to paint blobs on clean pages."""
    erased = hole * paper_area
    near_erased = F.max_pool2d(erased, 2 * PAPER_MARGIN + 1, stride=1, padding=PAPER_MARGIN)
    return torch.cat([hole, near_erased * paper_area], -3)


class DetectorCrops(Dataset):
    """Training pairs (occluded image, target) where item i is drawn from the seed [seed, i].

    The target is `detector_target`'s. With probability `clean_share` the item
    is the clean crop with an empty target.
    """

    def __init__(self, crops: SyntheticCrops, seed: int, clean_share: float):
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


def train_detector(
    out_dir: str | Path,
    steps: int = 6_000,
    batch_size: int = 16,
    lr: float = 2e-3,
    config: str | SegUNetConfig = "default",
    seed: int = 0,
    val_every: int = 500,
    ckpt_every: int = 200,
    device: str = "auto",
    num_workers: int = 0,
    kinds: tuple[str, ...] = KINDS,
    crop: tuple[int, int] = MIN_INPUT,
    clean_share: float = 0.25,
    val_size: int = 256,
    scale_jitter: float = SCALE_JITTER,
    tight_share: float = TIGHT_SHARE,
    init: str | Path | None = None,
    ship: bool = False,
) -> Path:
    """Train a SegUNet detector in `out_dir`, resuming from out_dir/last.pt if it is there.

    config: a SegUNetConfig or a name in seg_unet.CONFIGS, or with `init` (a weights
    file to fine-tune) that file's config. scale_jitter: crops' em lies within
    TEXT_HEIGHT * exp(+-scale_jitter). tight_share: the share of crops rendered at the text's own
    extent and padded or cut to `crop` (SyntheticCrops). device: "auto" takes CUDA when there is one.
    Writes last.pt, log.csv (one row per validation) and detector.safetensors
    (after every validation and at the end); with `ship`, copies the final weights
    to models/detector.safetensors, the pipeline's default. Returns the path of
    the weights written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(device)
    torch.manual_seed(seed)
    if init is not None:
        model = load_seg_unet(init, device).train()
    else:
        model = SegUNet(CONFIGS[config] if isinstance(config, str) else config).to(device)
    # what defines the run: resuming with other values would silently mix two runs
    run = {"config": dataclasses.asdict(model.config), "batch_size": batch_size, "lr": lr, "seed": seed,
           "kinds": list(kinds), "crop": list(crop), "clean_share": clean_share,
           "scale_jitter": scale_jitter, "tight_share": tight_share, "init": str(init or "")}
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    checkpoint_path, weights_path = out_dir / "last.pt", out_dir / "detector.safetensors"
    start = 0
    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint is not None:
        if checkpoint["run"] != run:
            raise ValueError(
                f"{checkpoint_path}: holds another run ({checkpoint['run']}); use a new out_dir or delete it"
            )
        model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        start = checkpoint["step"]
        print(f"resuming {checkpoint_path} at step {start}")
    log = CsvLog(out_dir / "log.csv", start)

    crops = dict(kinds=kinds, crop=crop, scale_jitter=scale_jitter, tight_share=tight_share)
    val = fixed_set(val_size, seed=seed + 1_000_003, **crops)
    loader = DataLoader(
        DetectorCrops(SyntheticCrops(**crops), seed, clean_share),
        batch_size=batch_size,
        sampler=range(start * batch_size, steps * batch_size),
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    print(f"SegUNet {model.num_parameters():,} parameters on {device}; {model.config}")
    started, smooth = time.perf_counter(), {}

    def train_step(step: int, batch) -> dict[str, float]:
        x, target = (t.to(device, non_blocking=True) for t in batch)
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(step, steps, lr)
        logits = model(x)
        loss = detector_loss(logits, target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            predicted, truth = logits[:, 0] > 0, target[:, 0] > 0.5
            iou = _ratio((predicted & truth).sum().item(), (predicted | truth).sum().item())
        smooth["loss"] = 0.98 * smooth.get("loss", loss.item()) + 0.02 * loss.item()
        return {"loss": smooth["loss"], "iou": iou}

    def save(step: int) -> None:
        state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step, "run": run}
        save_checkpoint(checkpoint_path, state)

    def validate_and_export(step: int) -> None:
        row = {"step": step, "seconds": round(time.perf_counter() - started, 1), "lr": optimiser.param_groups[0]["lr"],
               "loss": smooth.get("loss", float("nan")), **validate(model, val, device)}
        log.write(row)
        tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        save_seg_unet(weights_path, model, step=str(step))

    model.train()
    run_steps(start, steps, loader, train_step, save, ckpt_every, hooks=((val_every, validate_and_export),),
              samples_per_step=batch_size, desc="train detector")
    if start < steps and steps % val_every:
        validate_and_export(steps)
    if not weights_path.exists():  # the run was already complete when resumed
        save_seg_unet(weights_path, model, step=str(steps))
    if ship:
        save_seg_unet(DEFAULT_WEIGHTS, model, step=str(steps))
        return DEFAULT_WEIGHTS
    return weights_path


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)


def _nearest_shape(shape_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, the id of the nearest shape pixel and the distance to it."""
    if not shape_ids.any():
        return np.zeros_like(shape_ids), np.full(shape_ids.shape, np.inf, np.float32)
    distance, label = cv2.distanceTransformWithLabels(
        (shape_ids == 0).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    # labels number the shape pixels 1.. in row-major order
    return np.concatenate([[0], shape_ids[shape_ids != 0]])[label], distance


def _changed_by(occlusion: Occlusion, colours: tuple[str, ...]) -> np.ndarray:
    """bool HxW: the pixels that shapes of these colours changed."""
    ids = [k for k, shape in enumerate(occlusion.shapes, 1) if shape.colour in colours]
    return np.isin(occlusion.shape_ids, ids)


def _parts(occlusion: Occlusion, truth: np.ndarray, change: np.ndarray) -> dict[str, np.ndarray]:
    """`truth` (bool HxW) split into erasure, edge and interior pixels (see `evaluate_detector`)."""
    erasure = truth & _changed_by(occlusion, ERASURE_COLOURS)
    inner = cv2.erode(occlusion.mask.view(np.uint8), np.ones((2 * EDGE_BAND + 1,) * 2, np.uint8)).view(bool)
    edge = truth & ~erasure & ~inner & (change <= EDGE_CHANGE)
    return {"erasure": erasure, "edge": edge, "interior": truth & ~erasure & ~edge}


def evaluate_detector(
    detector: Detector,
    kinds: tuple[str, ...] = KINDS,
    n: int = 100,
    seed: int = 0,
    coverage: tuple[float, float] = (0.01, 0.4),
) -> pd.DataFrame:
    """Score `detector` on `n` fixed-seed rendered and occluded images per kind (the quality bar's metrics).

    Pixels count where they lie near text: on the characters' ink dilated by
    half an em. The truth is the occlusion mask (pixels a shape changed); the
    unchanged area under a paper-coloured shape is neither right nor wrong, as
    only its effect on the text can be seen. A false positive is charged to the
    shape nearest to it (within half an em) for the per-shape rows.

    Returns one row per (kind, group, value), with kind "all" summing the kinds:
    group "all" (columns iou, recall, precision, fp_clean = pixels flagged on the
    clean images per ink pixel, paper_recall and paper_precision of the
    paper-coloured mask, ms per image), groups "shape", "style" and "colour"
    (iou, recall, precision, pixels), group "change": recall on the pixels an
    occluder changed by a band of grey levels (CHANGE_BANDS; the blur and JPEG
    spill around a shape is faint), where a false positive has no band, and group
    "part": recall on the truth split three ways, "erasure" (paper-coloured and
    white shapes, which change a page by the ink they take), "edge" (the faint
    spill in the truth's edge band) and "interior" (the rest).
    """
    counts: dict[tuple[str, str, str], np.ndarray] = {}  # tp, fp, fn
    # per kind: flagged on clean, ink, paper tp, paper truth, paper hits, paper flagged, images, seconds
    extra: dict[str, np.ndarray] = {}

    def add(key, values):
        counts[key] = counts.get(key, 0) + np.asarray(values, np.float64)

    for k, kind in enumerate(kinds):
        extra[kind] = np.zeros(8)
        for i in tqdm(range(n), desc=f"evaluate {detector.name} on {kind}", leave=False):
            rng = np.random.default_rng([seed, k, i])
            sample = render(kind, rng)
            occlusion = occlude(sample, rng, rng.uniform(*coverage))
            start = time.perf_counter()
            found = detector(occlusion.image)
            seconds = time.perf_counter() - start
            flagged_clean = detector(sample.image).mask

            half_em = max(1, round(sample.text_height / 2))
            ink = sample.char_ink > 0
            near = cv2.dilate(ink.view(np.uint8), _disc(half_em)).view(bool)
            counted = near & ~(occlusion.paper_area & ~occlusion.mask)
            truth, predicted = occlusion.mask & counted, found.mask & counted
            false_positive = predicted & ~truth
            add((kind, "all", "all"), [(predicted & truth).sum(), false_positive.sum(), (truth & ~predicted).sum()])
            change = np.abs(occlusion.image.astype(np.int16) - sample.image).max(-1)
            bands = {f"{low:03d}-{high:03d}": truth & (change >= low) & (change <= high) for low, high in CHANGE_BANDS}
            # a false positive has no band or part (it changed no pixel): its count, and with it IoU and precision, is NaN
            for group, split in (("change", bands), ("part", _parts(occlusion, truth, change))):
                for value, where in split.items():
                    add((kind, group, value), [(predicted & where).sum(), np.nan, (where & ~predicted).sum()])

            nearest, distance = _nearest_shape(occlusion.shape_ids)
            per_shape = lambda ids, where: np.bincount(ids[where], minlength=len(occlusion.shapes) + 1)
            hits = per_shape(occlusion.shape_ids, predicted & truth)
            charged = per_shape(nearest, false_positive & (distance <= half_em))
            misses = per_shape(occlusion.shape_ids, truth & ~predicted)
            for shape_id, shape in enumerate(occlusion.shapes, 1):
                tally = [hits[shape_id], charged[shape_id], misses[shape_id]]
                for group in ("shape", "style", "colour"):
                    add((kind, group, getattr(shape, "kind" if group == "shape" else group)), tally)

            paper_truth = _changed_by(occlusion, ("paper",)) & truth
            paper_found = found.paper_mask & near
            extra[kind] += [
                flagged_clean.sum(), ink.sum(),
                (found.paper_mask & paper_truth).sum(), paper_truth.sum(),
                (paper_found & occlusion.paper_area).sum(), paper_found.sum(),
                1, seconds,
            ]

    for (kind, group, value), tally in list(counts.items()):
        add(("all", group, value), tally)
    extra["all"] = sum(extra.values())
    rows = []
    for (kind, group, value), (tp, fp, fn) in sorted(counts.items()):
        row = {"kind": kind, "group": group, "value": value, "pixels": int(tp + fn),
               "iou": _ratio(tp, tp + fp + fn), "recall": _ratio(tp, tp + fn), "precision": _ratio(tp, tp + fp)}
        if group == "all":
            flagged, ink, paper_tp, paper_truth, paper_hits, paper_flagged, images, seconds = extra[kind]
            row.update(fp_clean=_ratio(flagged, ink), paper_recall=_ratio(paper_tp, paper_truth),
                       paper_precision=_ratio(paper_hits, paper_flagged), images=int(images),
                       ms=1000 * seconds / images)
        rows.append(row)
    order = {"all": 0, "shape": 1, "style": 2, "colour": 3, "change": 4, "part": 5}
    table = pd.DataFrame(rows).sort_values(["kind", "group", "value"], key=lambda c: c.map(order) if c.name == "group" else c)
    return table.reset_index(drop=True)


def false_positives_on_real(detector: Detector, folder: str | Path) -> dict[str, float]:
    """Pixels `detector` flags on a folder of clean real text images, per ink pixel (the minority side
    of an Otsu threshold of the grey levels), and the share of images with any pixel flagged."""
    flagged = ink = images_flagged = 0
    paths = find_images(folder)
    for path in tqdm(paths, desc=f"{detector.name} on {Path(folder).name}", leave=False):
        image = read_image(path)
        mask = detector(image).mask
        flagged += mask.sum()
        ink += otsu_ink(image).sum()
        images_flagged += bool(mask.any())
    return {"set": str(folder), "images": len(paths), "fp_per_ink": _ratio(flagged, ink),
            "images_flagged": _ratio(images_flagged, len(paths))}


def time_page(detector: Detector, repeats: int = 3, seed: int = 0) -> float:
    """Milliseconds (median of `repeats`) to run `detector` on an occluded A4 page of 10-pt text at 300 dpi."""
    for attempt in range(seed, seed + 100):  # the first draw with a page full of lines, not a single one
        rng = np.random.default_rng(attempt)
        sample = render("docs", rng, size=42, canvas=(3508, 2480))  # 10 pt at 300 dpi is a 42 px em
        if sample.text.count("\n") >= 20:
            break
    image = occlude(sample, rng, 0.1).image
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector(image)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))
