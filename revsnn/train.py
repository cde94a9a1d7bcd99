r"""Training loop: one process or many (``torchrun``), resumable, deterministic with a seed.

Library use: ``train(TrainConfig(...)) -> TrainResult``. Command line: ``python -m revsnn train``,
whose parser is filled by :func:`add_arguments` and whose body is :func:`run`.

What a run does, per epoch e = 0 … epochs−1:

1. the training sampler's order is ``randperm(n, seed + e)`` (:func:`revsnn.data.set_epoch`);
2. each static batch ``[B, C, H, W]`` is encoded into ``[T, B, C, H, W]``: ``"direct"`` repeats the
   (normalised) image T times, ``"rate"`` draws Bernoulli spikes with probability = intensity in
   [0, 1] from a generator seeded by ``(seed, e, rank)``; DVS frame sequences ``[B, T, 2, H, W]`` are
   only transposed;
3. logits are the model's output averaged over time, the loss is their cross-entropy;
4. test metrics over the whole test split, a row in ``metrics.csv`` and ``checkpoint.pt`` (model,
   optimizer, scheduler, epoch, RNG states of every rank, the config, the metrics so far).

Files in ``out_dir`` (written by rank 0 only; nothing is written when ``out_dir`` is None):

- ``config.json``: the :class:`TrainConfig` plus world size, torch version and device.
- ``metrics.csv``: one row per epoch, columns :data:`METRICS_COLUMNS` (``peak_memory_mib`` is the
  maximum over ranks of ``torch.cuda.max_memory_allocated`` during the epoch, empty on CPU).
- ``checkpoint.pt``: the latest epoch (replaced atomically after each epoch).
- ``results.json``: the final row and the best test accuracy.

Resuming (``resume=True`` or a path) restores everything in the checkpoint, so training E epochs
straight and training k epochs then resuming to E give identical weights (tests/test_train.py). The
checkpoint's config must match the new one except for ``epochs`` (which may grow when
``schedule="none"``), ``device``, ``num_workers``, ``out_dir``, ``data_dir``, ``quiet`` and
``resume``; it must also come from the same number of processes.

Distributed. When ``WORLD_SIZE > 1`` (set by ``torchrun``) the loop initialises
``torch.distributed`` from the environment (NCCL on CUDA, Gloo on CPU), places rank r on
``cuda:LOCAL_RANK``, wraps the model in ``DistributedDataParallel`` and shards the data with a
:class:`~torch.utils.data.DistributedSampler`. ``batch`` is *per process*: the effective batch is
``batch × WORLD_SIZE``, and one DDP step over it averages the same gradients a single process
computes over the concatenated batch (tests/test_ddp.py). BatchNorm statistics are per process
unless ``sync_bn=True`` (``SyncBatchNorm``; it also turns off the zoo's BN-into-node fusion, which
would compute per-process statistics itself). Spiking nodes hold no parameters and need nothing
special under DDP. Example, two GPUs (or two CPU processes with ``--device cpu``)::

    torchrun --standalone --nproc_per_node=2 -m revsnn train --data mnist --arch convnet \
        --mode fused -T 4 --batch 32 --epochs 6

Determinism. The seed fixes the initial weights (``torch.manual_seed`` before the model is built),
the data order and the rate encoder; runs on CPU with the same number of threads repeat bit for
bit. On CUDA add ``deterministic=True`` (cuDNN deterministic algorithms).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from .data import DATASETS, DatasetInfo, dataset_info, load_dataset, make_loader, set_epoch
from . import strategy

__all__ = [
    "TrainConfig", "TrainResult", "train", "add_arguments", "run", "config_from_args",
    "METRICS_COLUMNS", "ENCODERS", "OPTIMIZERS", "SCHEDULES", "encode", "build_model",
    "load_checkpoint", "collect_runs",
]

ENCODERS = ("direct", "rate")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "cosine")
METRICS_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
                   "epoch_time_s", "peak_memory_mib")
CHECKPOINT = "checkpoint.pt"
_CHECKPOINT_FORMAT = 1
# Config fields that may change between a run and its resumption.
_RESUMABLE_CHANGES = {"epochs", "device", "num_workers", "out_dir", "quiet", "resume", "data_dir"}

ModelFn = Callable[["TrainConfig", DatasetInfo], nn.Module]


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    data: dataset name (:data:`revsnn.data.DATASETS`); data_dir: where user-provided files live.
    arch: model name in :mod:`revsnn.models` (a label when :func:`train` gets a ``model_fn``);
    mode: name of a :mod:`revsnn.strategy` preset offered for training (e.g. a
    :class:`~revsnn.MemoryMode` value); one that does not build ``arch`` is refused here;
    node_kwargs: node hyperparameters (e.g. ``{"tau": 2.0}``).
    T: timesteps (for DVS128: the number of frames per sample).
    batch: samples per step *per process*; epochs: total epochs of the run.
    lr, optimizer (adam | adamw | sgd), weight_decay, momentum (sgd), schedule (none | cosine).
    seed: initial weights, data order and rate encoder.
    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", …
    out_dir: where files go (None: write nothing).
    encoder: "direct" or "rate" (static images only).
    num_workers: DataLoader worker processes.
    resume: False, True (``out_dir/checkpoint.pt``) or a checkpoint path.
    limit_train, limit_test: use a fixed subset of that many items (quick runs).
    augment: random crop + flip (CIFAR). sync_bn: SyncBatchNorm under DDP.
    deterministic: cuDNN deterministic algorithms. quiet: no progress bars or epoch lines.
    dvs_size: resize DVS frames to this size.
    """

    data: str = "mnist"
    arch: str = "convnet"
    mode: str = "fused"
    T: int = 4
    batch: int = 64
    epochs: int = 1
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "none"
    seed: int = 0
    device: str = "auto"
    out_dir: Optional[str] = None
    encoder: str = "direct"
    num_workers: int = 0
    resume: Union[bool, str] = False
    data_dir: Optional[str] = None
    node_kwargs: dict = field(default_factory=dict)
    limit_train: Optional[int] = None
    limit_test: Optional[int] = None
    augment: bool = False
    sync_bn: bool = False
    deterministic: bool = False
    quiet: bool = False
    dvs_size: Optional[int] = None

    def __post_init__(self):
        from .models import MODELS
        self.mode = strategy.parse(self.mode, command="train",           # ValueError names the
                                   arch=self.arch if self.arch in MODELS else None).name  # choices
        self.data = str(self.data).strip().lower()
        if self.data not in DATASETS:
            raise ValueError(f"unknown dataset {self.data!r}; choose from {', '.join(DATASETS)}")
        for name in ("T", "batch", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive integer, got {value!r}")
            setattr(self, name, int(value))
        for name in ("limit_train", "limit_test", "dvs_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"TrainConfig: {name} must be None or a positive integer, "
                                 f"got {value!r}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig: num_workers must be >= 0, got {self.num_workers!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig: lr must be a positive number, got {self.lr!r}")
        for name, allowed in (("encoder", ENCODERS), ("optimizer", OPTIMIZERS),
                              ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainConfig: unknown {name} {getattr(self, name)!r}; choose "
                                 f"from {', '.join(allowed)}")
        if dataset_info(self.data).is_sequence and self.encoder != "direct":
            raise ValueError(f"TrainConfig: {self.data} already is a spike-frame sequence; use "
                             f"encoder='direct' (got {self.encoder!r})")
        self.node_kwargs = dict(self.node_kwargs or {})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` returns: one metrics row per epoch, the final row, the trained model."""

    config: TrainConfig
    history: list
    out_dir: Optional[str]
    world_size: int
    model: nn.Module = field(repr=False)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def best_test_acc(self) -> float:
        return max((r["test_acc"] for r in self.history), default=float("nan"))


# -- model, encoder, loss ------------------------------------------------------------------------

def build_model(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    """The zoo model ``config.arch`` for ``info``'s channels and classes, nodes in ``config.mode``.

    Weights come from ``config.seed``. The loop feeds the model ready-encoded ``[T, B, ...]``
    sequences (:func:`encode`), so the model's own encoder is not used. With ``sync_bn`` the zoo's
    BN-into-node fusion is turned off: the fused unit computes batch statistics itself, per process,
    and would bypass ``SyncBatchNorm``.
    """
    from . import models
    return models.build(config.arch, mode=config.mode,
                        num_classes=info.num_classes, in_channels=info.in_channels,
                        node_kwargs=dict(config.node_kwargs), T=config.T, encoder=config.encoder,
                        seed=config.seed, fuse_bn=False if config.sync_bn else None)


def encode(x: torch.Tensor, T: int, encoder: str, generator: Optional[torch.Generator] = None,
           sequence: bool = False) -> torch.Tensor:
    """Turn a batch into the time-first input ``[T, B, ...]`` the models take.

    Static ``[B, C, H, W]``: ``"direct"`` repeats it T times; ``"rate"`` draws S ~ Bernoulli(x) with
    x clamped to [0, 1] (so load the data with ``normalize=False``). A sequence ``[B, T, ...]`` is
    transposed.

    >>> encode(torch.ones(2, 1, 3, 3), 4, "direct").shape
    torch.Size([4, 2, 1, 3, 3])
    """
    if sequence:
        if x.shape[1] != T:
            raise ValueError(f"encode: the sequence has {x.shape[1]} frames, T = {T}")
        return x.transpose(0, 1).contiguous()
    if encoder == "direct":
        return x.unsqueeze(0).repeat(T, *([1] * x.dim()))
    if encoder == "rate":
        p = x.clamp(0.0, 1.0).unsqueeze(0).expand(T, *x.shape)
        return torch.bernoulli(p, generator=generator)
    raise ValueError(f"encode: unknown encoder {encoder!r}; choose from {', '.join(ENCODERS)}")


def _logits(model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    out = model(x_seq)
    return out.mean(0) if out.dim() == 3 else out      # [T, B, K] → rate-coded logits [B, K]


# -- distributed ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False       # we initialised the process group and must destroy it


def _init_distributed(device_pref: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    if dist.is_initialized():
        return _Dist(dist.get_rank(), dist.get_world_size(), local, False)
    use_cuda = torch.cuda.is_available() and not str(device_pref).startswith("cpu")
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), local, True)


def _resolve_device(pref: str, d: _Dist) -> torch.device:
    pref = str(pref).strip().lower()
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(pref)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {pref!r} requested but CUDA is not available")
        if d.world_size > 1:
            device = torch.device("cuda", d.local_rank)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def _all_reduce(values, device, op=None) -> list:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t.tolist()


# -- RNG and checkpoints -------------------------------------------------------------------------

def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)       # also seeds every CUDA device


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": _to_lists(random.getstate()),
    }


def _set_rng_state(state: dict) -> None:
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


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _check_resume_config(saved: dict, cfg: TrainConfig, world_size: int, saved_world: int) -> None:
    diffs = {k: (saved.get(k), v) for k, v in cfg.to_dict().items()
             if k not in _RESUMABLE_CHANGES and saved.get(k) != v}
    if diffs:
        text = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in sorted(diffs.items()))
        raise ValueError(f"cannot resume: the configuration differs from the checkpoint's ({text})")
    if saved_world != world_size:
        raise ValueError(f"cannot resume: the checkpoint was written by {saved_world} processes, "
                         f"this run has {world_size} (the data order and batches would differ)")
    if cfg.schedule != "none" and saved["epochs"] != cfg.epochs:
        raise ValueError(f"cannot resume: schedule {cfg.schedule!r} depends on epochs, which "
                         f"changed from {saved['epochs']} to {cfg.epochs}")


# -- the loop ------------------------------------------------------------------------------------

def _subset(ds, n: Optional[int]):
    if n is None or n >= len(ds):
        return ds
    g = torch.Generator().manual_seed(0)      # a fixed subset, independent of the training seed
    idx = torch.randperm(len(ds), generator=g)[:n].sort().values.tolist()
    return torch.utils.data.Subset(ds, idx)


def _make_optimizer(cfg: TrainConfig, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _progress(iterable, enabled: bool, desc: str):
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def _run_epoch(model, loader, optimizer, cfg, info, device, generator, show, desc):
    """One pass over ``loader`` (training when ``optimizer`` is given); mean loss and accuracy
    over every process's items. Sums stay on the device: no host sync per step."""
    training = optimizer is not None
    model.train(training)
    sums = torch.zeros(3, dtype=torch.float64, device=device)       # loss·n, correct, n
    bar = _progress(loader, show, desc)
    with torch.set_grad_enabled(training):
        for images, labels in bar:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            x = encode(images, cfg.T, cfg.encoder, generator, sequence=info.is_sequence)
            logits = _logits(model, x)
            loss = F.cross_entropy(logits, labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            n = labels.shape[0]
            sums[0] += loss.detach().double() * n
            sums[1] += (logits.detach().argmax(1) == labels).sum()
            sums[2] += n
            if show:
                loss_sum, correct, count = sums.tolist()
                bar.set_postfix(loss=f"{loss_sum / count:.4f}", acc=f"{correct / count:.3f}")
    if dist.is_initialized():
        dist.all_reduce(sums)
    loss_sum, correct, count = sums.tolist()
    return loss_sum / max(count, 1), correct / max(count, 1)


def _write_metrics(path: Path, history: list) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRICS_COLUMNS)
        w.writeheader()
        for row in history:
            w.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRICS_COLUMNS})
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def train(config: TrainConfig, model_fn: Optional[ModelFn] = None) -> TrainResult:
    """Train ``config`` and return its per-epoch metrics and model.

    ``model_fn(config, info)`` builds the model instead of the zoo (it is called right after the
    seed is set, so its initialisation is deterministic too); ``config.arch`` is then only a label.
    """
    cfg = config
    d = _init_distributed(cfg.device)
    try:
        return _train(cfg, d, model_fn)
    finally:
        if d.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, d: _Dist, model_fn: Optional[ModelFn]) -> TrainResult:
    device = _resolve_device(cfg.device, d)
    if cfg.deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    info = dataset_info(cfg.data, cfg.dvs_size)
    train_ds, test_ds = load_dataset(cfg.data, cfg.data_dir, normalize=cfg.encoder != "rate",
                                     augment=cfg.augment, frames=cfg.T, size=cfg.dvs_size)
    train_ds, test_ds = _subset(train_ds, cfg.limit_train), _subset(test_ds, cfg.limit_test)
    pin = device.type == "cuda"
    train_loader = make_loader(train_ds, cfg.batch, train=True, seed=cfg.seed, rank=d.rank,
                               world_size=d.world_size, num_workers=cfg.num_workers, pin_memory=pin)
    test_loader = make_loader(test_ds, cfg.batch, train=False, seed=cfg.seed, rank=d.rank,
                              world_size=d.world_size, num_workers=cfg.num_workers, pin_memory=pin)

    _seed_everything(cfg.seed)
    model = (model_fn or build_model)(cfg, info).to(device)
    if cfg.sync_bn and d.world_size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = model
    if d.world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = _make_optimizer(cfg, model.parameters())
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
                 if cfg.schedule == "cosine" else None)

    out = Path(cfg.out_dir) if cfg.out_dir is not None else None
    writer = out is not None and d.rank == 0
    history: list = []
    start_epoch = 0
    if cfg.resume:
        if cfg.resume is True and out is None:
            raise ValueError("resume=True reads out_dir/checkpoint.pt, but out_dir is None")
        path = out / CHECKPOINT if cfg.resume is True else Path(cfg.resume)
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
        ckpt = load_checkpoint(path)
        _check_resume_config(ckpt["config"], cfg, d.world_size, ckpt["world_size"])
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"][d.rank])
        history = list(ckpt["history"])
        start_epoch = int(ckpt["epoch"])

    if writer:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "config.json", {**cfg.to_dict(), "world_size": d.world_size,
                                          "device": str(device), "torch": str(torch.__version__)})
    show = not cfg.quiet and d.rank == 0 and sys.stderr.isatty()
    for epoch in range(start_epoch, cfg.epochs):
        set_epoch(train_loader, epoch, cfg.seed)
        gen = None
        if cfg.encoder == "rate":
            gen = torch.Generator(device).manual_seed(
                (cfg.seed * 1_000_003 + epoch) * 4099 + d.rank)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_acc = _run_epoch(net, train_loader, optimizer, cfg, info, device, gen,
                                           show, f"epoch {epoch + 1}/{cfg.epochs} train")
        test_loss, test_acc = _run_epoch(net, test_loader, None, cfg, info, device, gen, show,
                                         f"epoch {epoch + 1}/{cfg.epochs} test")
        if scheduler is not None:
            scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - t0
        peak = None
        if device.type == "cuda":
            peak = _all_reduce([torch.cuda.max_memory_allocated(device) / 2**20], device,
                               dist.ReduceOp.MAX)[0]
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
               "test_loss": test_loss, "test_acc": test_acc, "lr": lr,
               "epoch_time_s": elapsed, "peak_memory_mib": peak}
        history.append(row)
        rng = _rng_state()
        if d.world_size > 1:
            gathered = [None] * d.world_size
            dist.all_gather_object(gathered, rng)
            rng = gathered
        else:
            rng = [rng]
        if writer:
            _write_metrics(out / "metrics.csv", history)
            _save_atomic({"format": _CHECKPOINT_FORMAT, "epoch": epoch + 1,
                          "config": cfg.to_dict(), "world_size": d.world_size,
                          "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict() if scheduler is not None else None,
                          "rng": rng, "history": history, "torch": str(torch.__version__)},
                         out / CHECKPOINT)
        if not cfg.quiet and d.rank == 0:
            print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f} acc "
                  f"{train_acc:.4f} | test loss {test_loss:.4f} acc {test_acc:.4f} | "
                  f"{elapsed:.1f} s", file=sys.stderr, flush=True)
    result = TrainResult(cfg, history, cfg.out_dir, d.world_size, model)
    if writer:
        _write_json(out / "results.json", {"final": result.final,
                                           "best_test_acc": result.best_test_acc,
                                           "epochs_run": cfg.epochs - start_epoch})
    return result


def collect_runs(out_dirs) -> list:
    """One tidy row per finished run directory (its ``config.json`` and last ``metrics.csv`` row).

    Columns: data, arch, mode, label (the mode's legend name), seed, T, epochs, batch, lr,
    world_size, test_acc, best_test_acc, train_loss, test_loss, train_time_s (sum of epoch times).
    """
    rows = []
    for d in out_dirs:
        d = Path(d)
        cfg = json.loads((d / "config.json").read_text())
        with open(d / "metrics.csv", newline="") as f:
            history = list(csv.DictReader(f))
        if not history:
            raise ValueError(f"{d}: metrics.csv has no epochs")
        last = history[-1]
        rows.append({
            "data": cfg["data"], "arch": cfg["arch"], "mode": cfg["mode"],
            "label": strategy.get(cfg["mode"]).label, "seed": cfg["seed"], "T": cfg["T"],
            "epochs": int(last["epoch"]), "batch": cfg["batch"], "lr": cfg["lr"],
            "world_size": cfg.get("world_size", 1), "test_acc": float(last["test_acc"]),
            "best_test_acc": max(float(r["test_acc"]) for r in history),
            "train_loss": float(last["train_loss"]), "test_loss": float(last["test_loss"]),
            "train_time_s": sum(float(r["epoch_time_s"]) for r in history),
        })
    return rows


# -- command line --------------------------------------------------------------------------------

def _node_kwarg(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    low = value.strip().lower()
    if low in ("true", "false"):
        return key, low == "true"
    if low == "none":
        return key, None
    try:
        return key, float(value) if any(c in low for c in ".e") or low.startswith(("nan", "inf")) \
            else int(value)
    except ValueError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``train`` options to ``parser`` (defaults are :class:`TrainConfig`'s)."""
    from .cli import positive_int
    c = TrainConfig()
    modes = ", ".join(strategy.names(command="train"))
    a = parser.add_argument
    a("--data", default=c.data, help=f"dataset: {', '.join(DATASETS)} (default %(default)s)")
    a("--data-dir", default=None, help="folder with user-provided files (CIFAR, DVS128); "
      "default $REVSNN_DATA_DIR")
    from .models import MODELS
    a("--arch", default=c.arch, help=f"model in revsnn.models: {', '.join(MODELS)} "
      "(default %(default)s)")
    a("--mode", default=c.mode, help=f"memory mode of the spiking nodes: {modes} "
      "(default %(default)s)")
    a("-T", "--timesteps", dest="T", type=positive_int, default=c.T,
      help="timesteps (default %(default)s)")
    a("--batch", type=positive_int, default=c.batch,
      help="batch size per process (default %(default)s)")
    a("--epochs", type=positive_int, default=c.epochs, help="total epochs (default %(default)s)")
    a("--lr", type=float, default=c.lr, help="learning rate (default %(default)s)")
    a("--optimizer", default=c.optimizer, choices=OPTIMIZERS, help="(default %(default)s)")
    a("--weight-decay", type=float, default=c.weight_decay, help="(default %(default)s)")
    a("--momentum", type=float, default=c.momentum, help="SGD momentum (default %(default)s)")
    a("--schedule", default=c.schedule, choices=SCHEDULES, help="lr schedule (default %(default)s)")
    a("--seed", type=int, default=c.seed, help="(default %(default)s)")
    a("--device", default=c.device, help="auto, cpu, cuda, cuda:N (default %(default)s)")
    a("--out-dir", default=None, help="output folder (default data/results/runs/"
      "DATA_ARCH_MODE_T<T>_seed<SEED>)")
    a("--encoder", default=c.encoder, choices=ENCODERS, help="static-image encoder "
      "(default %(default)s)")
    a("--num-workers", type=int, default=c.num_workers, help="(default %(default)s)")
    a("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
      help="continue from OUT_DIR/checkpoint.pt, or from CHECKPOINT")
    a("--node", dest="node_kwargs", action="append", type=_node_kwarg, default=[],
      metavar="KEY=VALUE", help="node hyperparameter, e.g. --node tau=2.0 (repeatable)")
    a("--limit-train", type=positive_int, default=None, help="train on a fixed subset of N items")
    a("--limit-test", type=positive_int, default=None, help="test on a fixed subset of N items")
    a("--augment", action="store_true", help="random crop + flip (CIFAR)")
    a("--sync-bn", action="store_true", help="SyncBatchNorm under DDP")
    a("--deterministic", action="store_true", help="cuDNN deterministic algorithms")
    a("--dvs-size", type=positive_int, default=None,
      help="resize DVS128 frames to N×N (N divides 128)")
    a("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` for parsed ``train`` arguments."""
    mode = strategy.get(args.mode).name
    out_dir = args.out_dir or os.path.join(
        "data", "results", "runs", f"{args.data}_{args.arch}_{mode}_T{args.T}_seed{args.seed}")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kw: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names}
    kw.update(mode=mode, out_dir=out_dir, node_kwargs=dict(args.node_kwargs or []))
    return TrainConfig(**kw)


def run(args: argparse.Namespace) -> int:
    """Body of ``python -m revsnn train``: train and print a summary line; returns 0.

    Bad options, an unknown dataset / arch / mode, missing data files or a mismatched checkpoint
    raise :class:`revsnn.cli.UsageError` (exit code 2 from the command line) with the message.
    """
    from .cli import UsageError
    try:
        cfg = config_from_args(args)
        result = train(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    if int(os.environ.get("RANK", "0")) == 0:
        f = result.final
        print(f"{cfg.data} {cfg.arch} {cfg.mode} T={cfg.T} seed={cfg.seed}: "
              f"test_acc={f.get('test_acc', float('nan')):.4f} "
              f"test_loss={f.get('test_loss', float('nan')):.4f} -> {cfg.out_dir}")
    return 0


def main(argv=None) -> int:
    """``python -m revsnn.train`` (the same as ``python -m revsnn train``)."""
    from .cli import main as cli_main
    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
