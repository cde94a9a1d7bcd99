r"""Training loop: one process or many (``torchrun``), resumable, deterministic with a seed.

Library use: ``train(TrainConfig(...)) -> TrainResult``. Command line: ``python -m revsnn train``
(:mod:`revsnn.cli.train`).

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

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from .. import strategy
from ..data import DatasetInfo, dataset_info, load_dataset, make_loader, set_epoch
from ..models.encoders import encode_static
from .checkpoints import (CHECKPOINT, CHECKPOINT_FORMAT, check_resume_config, load_checkpoint,
                          rng_state, save_atomic, seed_everything, set_rng_state, write_atomic)
from .config import METRICS_COLUMNS, TrainConfig, TrainResult, TrainSetupError
from .distributed import DistInfo, all_reduce, init_distributed, resolve_device

__all__ = ["train", "build_model", "encode", "collect_runs"]

ModelFn = Callable[[TrainConfig, DatasetInfo], nn.Module]


# -- model, encoder, loss ------------------------------------------------------------------------

def build_model(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    """The zoo model ``config.arch`` for ``info``'s channels and classes, nodes in ``config.mode``
    (``config.arch = "package.module:factory"``: a network of your own, converted by
    :func:`revsnn.convert`).

    Weights come from ``config.seed``. The loop feeds the model ready-encoded ``[T, B, ...]``
    sequences (:func:`encode`), so the model's own encoder is not used. With ``sync_bn`` the zoo's
    BN-into-node fusion is turned off: the fused unit computes batch statistics itself, per process,
    and would bypass ``SyncBatchNorm``.
    """
    from .. import models
    from ..conversion import is_user_model, user_network
    if is_user_model(config.arch):             # a network of your own, converted to config.mode
        return user_network(config.arch, config.mode, num_classes=info.num_classes,
                            in_channels=info.in_channels, T=config.T, seed=config.seed,
                            encoder=config.encoder, node_kwargs=dict(config.node_kwargs))
    return models.build(config.arch, mode=config.mode,
                        num_classes=info.num_classes, in_channels=info.in_channels,
                        node_kwargs=dict(config.node_kwargs), T=config.T, encoder=config.encoder,
                        seed=config.seed, fuse_bn=False if config.sync_bn else None)


def encode(x: torch.Tensor, T: int, encoder: str, generator: Optional[torch.Generator] = None,
           sequence: bool = False) -> torch.Tensor:
    """Turn a batch into the time-first input ``[T, B, ...]`` the models take.

    Static ``[B, C, H, W]``: the model zoo's encoders (:func:`revsnn.models.encoders.encode_static`:
    ``"direct"`` repeats it T times, ``"rate"`` draws S ~ Bernoulli(x), so load the data with
    ``normalize=False``). A sequence ``[B, T, ...]`` is transposed.

    >>> encode(torch.ones(2, 1, 3, 3), 4, "direct").shape
    torch.Size([4, 2, 1, 3, 3])
    """
    if sequence:
        if x.shape[1] != T:
            raise ValueError(f"encode: the sequence has {x.shape[1]} frames, T = {T}")
        return x.transpose(0, 1).contiguous()
    return encode_static(x, T, encoder, generator)


def _logits(model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    out = model(x_seq)
    return out.mean(0) if out.dim() == 3 else out      # [T, B, K] → rate-coded logits [B, K]


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
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=METRICS_COLUMNS)
    w.writeheader()
    for row in history:
        w.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRICS_COLUMNS})
    write_atomic(path, lambda f: f.write(buf.getvalue().encode()))


def _write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    write_atomic(path, lambda f: f.write(text.encode()))


def train(config: TrainConfig, model_fn: Optional[ModelFn] = None) -> TrainResult:
    """Train ``config`` and return its per-epoch metrics and model.

    ``model_fn(config, info)`` builds the model instead of the zoo (it is called right after the
    seed is set, so its initialisation is deterministic too); ``config.arch`` is then only a label.
    """
    cfg = config
    d = init_distributed(cfg.device)
    try:
        return _train(cfg, d, model_fn)
    finally:
        if d.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, d: DistInfo, model_fn: Optional[ModelFn]) -> TrainResult:
    device = resolve_device(cfg.device, d)
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

    seed_everything(cfg.seed)
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
            raise TrainSetupError("resume=True reads out_dir/checkpoint.pt, but out_dir is None; "
                                  "give out_dir or a checkpoint path")
        path = out / CHECKPOINT if cfg.resume is True else Path(cfg.resume)
        ckpt = load_checkpoint(path)
        check_resume_config(ckpt["config"], cfg, d.world_size, ckpt["world_size"])
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            set_rng_state(ckpt["rng"][d.rank])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise TrainSetupError(
                f"cannot resume: {path} does not fit this run's model or optimizer "
                f"({type(exc).__name__}: {first[:300]}); start without --resume or use the "
                f"checkpoint's own configuration") from None
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
            peak = all_reduce([torch.cuda.max_memory_allocated(device) / 2**20], device,
                               dist.ReduceOp.MAX)[0]
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
               "test_loss": test_loss, "test_acc": test_acc, "lr": lr,
               "epoch_time_s": elapsed, "peak_memory_mib": peak}
        history.append(row)
        rng = rng_state()
        if d.world_size > 1:
            gathered = [None] * d.world_size
            dist.all_gather_object(gathered, rng)
            rng = gathered
        else:
            rng = [rng]
        if writer:
            _write_metrics(out / "metrics.csv", history)
            save_atomic({"format": CHECKPOINT_FORMAT, "epoch": epoch + 1,
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
