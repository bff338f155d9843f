"""Small pieces every trainer needs: device choice, phases, checkpoints that resume exactly, a progress bar.

A trainer keeps its own model, optimizer and data; `run_steps` drives the steps,
calls its periodic hooks (validation, logging) and saves a checkpoint every
`ckpt_every` steps or CKPT_SECONDS, whichever comes first, at the end and on Ctrl-C or `kill`. A checkpoint written after step
i holds everything the next step depends on (weights, optimizer, RNG states and
the step itself; data are indexed by step), so a run killed at any point and
resumed from its last checkpoint ends with the same weights as one never stopped.
"""

import csv
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import ModelError
from ..nn.weights import SHIPPED_DIR, read_metadata, resolve_device

__all__ = ["ship_weights", "Phase", "phase_at", "resolve_device", "rng_state", "set_rng_state", "save_checkpoint",
           "load_checkpoint", "checkpoint_state", "resume", "CsvLog", "run_steps"]


@dataclass
class Phase:
    """A stretch of training with its own learning rate."""

    name: str  # shown in the progress bar and the log
    steps: int  # number of optimizer steps in this phase
    lr: float  # learning rate throughout the phase


def phase_at(phases: list[Phase], step: int) -> Phase:
    """The phase that step `step` (0-based, counted over all phases) belongs to."""
    for phase in phases:
        if step < phase.steps:
            return phase
        step -= phase.steps
    raise IndexError(f"step {step} is past the last phase")


def ship_weights(source: str | Path, name: str, to: Path = SHIPPED_DIR) -> Path:
    """Copy a run's weights file over the shipped one called `name`, atomically; returns the shipped path.
    Trainers never write there themselves: shipping is a choice made after measuring."""
    read_metadata(source)  # a readable weights file, or a ModelError naming it
    target = Path(to) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    return target


def rng_state() -> dict:
    """The state of every random generator a training step may draw from."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save to a temporary file, then rename: a kill mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> dict | None:
    """The checkpoint at `path`, or None when there is none."""
    path = Path(path)
    # our own files: they hold optimizer and RNG states, which weights_only loading does not allow
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def checkpoint_state(step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, run: dict, **extra) -> dict:
    """What a checkpoint after `step` holds: everything the next step depends on, and the run it belongs to."""
    return {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_state(),
            "run": run, **extra}


def resume(path: str | Path, run: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict | None:
    """Load the checkpoint at `path` into `model` and `optimizer` and restore the RNG states; returns it, or
    None when there is none. A checkpoint of another run (any value of `run` changed) is refused."""
    checkpoint = load_checkpoint(path)
    if checkpoint is None:
        return None
    changed = [k for k in run if checkpoint["run"].get(k) != run[k]]
    if changed:
        raise ModelError(f"{path}: a checkpoint of another run (it differs in {', '.join(changed)}); "
                         "choose another output folder or delete the checkpoint to start afresh")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    set_rng_state(checkpoint["rng"])
    print(f"resuming {path} at step {checkpoint['step']}")
    return checkpoint


class CsvLog:
    """Rows of metrics appended to a CSV file. On resume from step `resume_step`, rows logged
    after it (by the run that was killed) are dropped, since the resumed run logs them again."""

    def __init__(self, path: str | Path, resume_step: int = 0):
        self.path = Path(path)
        rows = []
        if resume_step and self.path.is_file():
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self.fields = list(rows[0]) if rows else None
        with self.path.open("w", newline="") as f:
            if rows:
                writer = csv.DictWriter(f, self.fields)
                writer.writeheader()
                writer.writerows(rows)

    def write(self, row: dict) -> None:
        new = self.fields is None
        self.fields = self.fields or list(row)
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, self.fields)
            if new:
                writer.writeheader()
            writer.writerow(row)


class _StopOnInterrupt:
    """Turns the first Ctrl-C (or `kill`, SIGTERM) into a request to stop after the current step;
    a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.requested = False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


CKPT_SECONDS = 600  # a checkpoint at least this often: a stopped run loses at most ten minutes, however slow its steps


def run_steps(start: int, stop: int, batches: Iterable, step: Callable[[int, object], dict[str, float]],
              save: Callable[[int], None], ckpt_every: int,
              hooks: tuple[tuple[int, Callable[[int], None]], ...] = (), samples_per_step: int = 1,
              desc: str = "train") -> None:
    """Run `step(i, batch)` for i in [start, stop), the batches coming in order from `batches`.

    After step i, each hook `(every, fn)` with (i + 1) % every == 0 calls fn(i + 1); then,
    every `ckpt_every` steps, every CKPT_SECONDS and after the last, `save(i + 1)` writes a checkpoint from
    which training resumes at step i + 1. On Ctrl-C the current step finishes, a checkpoint
    is saved and KeyboardInterrupt is raised; `kill` (SIGTERM) does the same. `step` returns the
    metrics the bar shows.
    """
    bar = tqdm(total=stop, initial=start, desc=desc, dynamic_ncols=True, mininterval=1.0)  # light on nohup logs
    last_saved, saved_at = start, time.perf_counter()
    with _StopOnInterrupt() as interrupt:
        tick, seconds_per_step = time.perf_counter(), None
        for i, batch in zip(range(start, stop), batches):
            metrics = step(i, batch)
            now = time.perf_counter()
            # a moving average: single steps vary with the batch and with other work on the machine
            seconds_per_step = now - tick if seconds_per_step is None else 0.9 * seconds_per_step + 0.1 * (now - tick)
            bar.set_postfix({**{k: f"{v:.3g}" for k, v in metrics.items()},
                             "samples/s": f"{samples_per_step / seconds_per_step:.1f}"}, refresh=False)
            bar.update()
            for every, fn in hooks:
                if every and (i + 1) % every == 0:
                    fn(i + 1)
            if ((i + 1) % ckpt_every == 0 or i + 1 == stop or interrupt.requested
                    or time.perf_counter() - saved_at >= CKPT_SECONDS):
                save(i + 1)
                last_saved, saved_at = i + 1, time.perf_counter()
            if interrupt.requested:
                bar.close()
                raise KeyboardInterrupt(f"stopped after step {last_saved}; run again to resume")
            tick = time.perf_counter()
    bar.close()
