"""Save and load model weights as safetensors, with the config beside them.

The file's metadata holds the model's name, its config as JSON and a SHA-256 of
the tensors, so a model can be rebuilt from the file alone (as nanoGPT's
checkpoints do) and a truncated or edited file is caught on load.
"""

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file, safe_open

from ..errors import ModelError

__all__ = ["SHIPPED_DIR", "shipped", "resolve_device", "native_bfloat16", "save_weights", "load_weights", "read_metadata"]

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "models"  # package data, so a wheel carries the weights


def shipped(name: str) -> Path:
    """The path of a shipped weights file, e.g. shipped("pconv.safetensors")."""
    return SHIPPED_DIR / name


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" is the GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 convolutions natively (a GPU that has it; a CPU with AVX512-BF16 or
    AMX). There the models run in bfloat16 at inference: on an A4 page on 2 AVX512-BF16 cores the detector is
    1.8 and the inpainter 1.7 times as fast, the detector's probabilities move by a few hundredths and restored
    pixels by a fraction of a grey level (docs/experiments.md). Elsewhere bfloat16 is emulated, slower than
    float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_weights(path: str | Path, model: torch.nn.Module, config, name: str, **extra: str) -> None:
    """Write `model`'s state dict with `config` (a dataclass) and `name` in the metadata.

    `extra` adds string metadata, e.g. the training step. The write is atomic.
    """
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"name": name, "config": json.dumps(dataclasses.asdict(config)), "sha256": _digest(tensors), **extra}
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a weights file, without loading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{path}: not a readable safetensors file ({e})") from e


def load_weights(path: str | Path, config_cls, expected_name: str):
    """Return `(config, state_dict)` from a file written by `save_weights`.

    Raises ModelError naming the file when it is missing, corrupt, of another
    model, or its tensors do not match the stored hash.
    """
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("name") != expected_name:
        raise ModelError(f"{path}: holds a {meta.get('name')!r} model, expected {expected_name!r}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{path}: not a readable safetensors file ({e})") from e
    if _digest(tensors) != meta.get("sha256"):
        raise ModelError(f"{path}: tensors do not match the stored SHA-256; the file is corrupt, re-train or restore it")
    config = config_cls(**json.loads(meta["config"]))
    return config, tensors
