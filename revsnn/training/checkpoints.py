"""Checkpoints and RNG state: what resuming restores so that it continues exactly."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig, TrainSetupError

__all__ = ["CHECKPOINT", "RESUMABLE_CHANGES", "seed_everything", "rng_state", "set_rng_state",
           "load_checkpoint", "save_atomic", "write_atomic", "check_resume_config"]

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


_REQUIRED = {"format": int, "epoch": int, "config": dict, "world_size": int, "model": dict,
             "optimizer": dict, "rng": list, "history": list}


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`train` (tensors and plain containers only).

    :class:`TrainSetupError` naming the problem for an empty, truncated, corrupted or foreign file
    (one that is not a revsnn training checkpoint, or of another format version); the message says
    what to do. A missing file is ``FileNotFoundError``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
    fresh = "start without --resume, or resume from another checkpoint.pt"
    if path.stat().st_size == 0:
        raise TrainSetupError(f"cannot resume: {path} is empty (0 bytes); {fresh}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every way a file fails to unpickle is one message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TrainSetupError(
            f"cannot resume: {path} is not a readable checkpoint (truncated, corrupted or not "
            f"written by torch.save: {type(exc).__name__}: {first[:200]}); {fresh}") from None
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise TrainSetupError(f"cannot resume: {path} is not a revsnn training checkpoint (it holds "
                              f"a {type(ckpt).__name__} without a 'format' entry); {fresh}")
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise TrainSetupError(f"cannot resume: {path} has checkpoint format {ckpt['format']!r}, "
                              f"this version reads format {CHECKPOINT_FORMAT}; {fresh}")
    bad = [k for k, t in _REQUIRED.items() if not isinstance(ckpt.get(k), t)]
    if bad:
        raise TrainSetupError(f"cannot resume: {path} is not a complete revsnn training checkpoint "
                              f"(missing or malformed: {', '.join(bad)}); {fresh}")
    return ckpt


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:          # e.g. a platform without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, write) -> None:
    """Write a file so that ``path`` always holds either its old or its new complete content:
    ``write(f)`` fills a temporary file in the same folder (binary mode), which is flushed,
    ``fsync``-ed and renamed over ``path`` (an atomic replace), and the folder is ``fsync``-ed so
    the rename survives a crash. A process killed at any point leaves at most a stray
    ``.tmp`` file, never a half-written ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def save_atomic(obj, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically (:func:`write_atomic`)."""
    write_atomic(path, lambda f: torch.save(obj, f))


def check_resume_config(saved: dict, cfg: TrainConfig, world_size: int, saved_world: int) -> None:
    diffs = {k: (saved.get(k), v) for k, v in cfg.to_dict().items()
             if k not in RESUMABLE_CHANGES and saved.get(k) != v}
    if diffs:
        text = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in sorted(diffs.items()))
        raise TrainSetupError(f"cannot resume: the configuration differs from the checkpoint's ({text})")
    if saved_world != world_size:
        raise TrainSetupError(f"cannot resume: the checkpoint was written by {saved_world} processes, "
                         f"this run has {world_size} (the data order and batches would differ)")
    if cfg.schedule != "none" and saved.get("epochs") != cfg.epochs:
        raise TrainSetupError(f"cannot resume: schedule {cfg.schedule!r} depends on epochs, which "
                         f"changed from {saved.get('epochs')} to {cfg.epochs}")
