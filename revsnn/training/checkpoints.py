"""Checkpoints and RNG state: what resuming restores so that it continues exactly."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig, TrainSetupError

__all__ = ["CHECKPOINT", "RESUMABLE_CHANGES", "seed_everything", "rng_state", "set_rng_state",
           "load_checkpoint", "save_atomic", "check_resume_config"]

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
RESUMABLE_CHANGES = {"epochs", "device", "num_workers", "out_dir", "quiet", "resume", "data_dir"}
"""Config fields that may change between a run and its resumption."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)       # also seeds every CUDA device


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": _to_lists(random.getstate()),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(_to_tuples(state["python"]))


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`train` (tensors and plain containers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def check_resume_config(saved: dict, cfg: TrainConfig, world_size: int, saved_world: int) -> None:
    diffs = {k: (saved.get(k), v) for k, v in cfg.to_dict().items()
             if k not in RESUMABLE_CHANGES and saved.get(k) != v}
    if diffs:
        text = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in sorted(diffs.items()))
        raise TrainSetupError(f"cannot resume: the configuration differs from the checkpoint's ({text})")
    if saved_world != world_size:
        raise TrainSetupError(f"cannot resume: the checkpoint was written by {saved_world} processes, "
                         f"this run has {world_size} (the data order and batches would differ)")
    if cfg.schedule != "none" and saved["epochs"] != cfg.epochs:
        raise TrainSetupError(f"cannot resume: schedule {cfg.schedule!r} depends on epochs, which "
                         f"changed from {saved['epochs']} to {cfg.epochs}")
