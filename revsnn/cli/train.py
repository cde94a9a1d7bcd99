"""``revsnn train``: train a zoo network under one memory strategy (:mod:`revsnn.training`)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from .. import strategy
from ..data import DATASETS
from ..training import OPTIMIZERS, SCHEDULES, TrainConfig, TrainSetupError, train
from ..models.encoders import ENCODERS
from ..bench.report import check_writable_dir
from .options import UsageError, positive_int

__all__ = ["add_arguments", "run", "config_from_args"]


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
    c = TrainConfig()
    modes = ", ".join(strategy.names(command="train"))
    a = parser.add_argument
    a("--data", default=c.data, help=f"dataset: {', '.join(DATASETS)} (default %(default)s)")
    a("--data-dir", default=None, help="folder with user-provided files (CIFAR, DVS128); "
      "default $REVSNN_DATA_DIR")
    from ..models import MODELS
    a("--arch", default=c.arch, help=f"model in revsnn.models: {', '.join(MODELS)} "
      "(default %(default)s)")
    a("--model", default=None, metavar="MODULE:FACTORY",
      help="a network of your own instead of --arch: package.module:factory or "
           "path/to/file.py:factory (called with num_classes, in_channels, T where it takes "
           "them), converted to --mode by revsnn.convert")
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
    a("--encoder", default=c.encoder, choices=tuple(ENCODERS), help="static-image encoder "
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
    arch = (getattr(args, "model", None) or args.arch).replace(":", "_").replace("/", "_")
    out_dir = args.out_dir or os.path.join(
        "data", "results", "runs", f"{args.data}_{arch}_{mode}_T{args.T}_seed{args.seed}")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kw: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names}
    if getattr(args, "model", None):
        from ..conversion import load_factory
        load_factory(args.model)                     # ValueError: the string, module or name
        kw["arch"] = args.model
    kw.update(mode=mode, out_dir=out_dir, node_kwargs=dict(args.node_kwargs or []))
    return TrainConfig(**kw)


def run(args: argparse.Namespace) -> int:
    """Train and print a summary line; returns 0.

    Bad options, an unknown dataset / arch / mode, missing data files, a mismatched checkpoint or
    an unavailable device raise :class:`UsageError` (exit code 2) with the message; anything
    raised while training is a bug and shows its traceback.
    """
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if cfg.node_kwargs:
        try:                    # the hyperparameters are checked here, before any data is read
            strategy.get(cfg.mode).make_node(**cfg.node_kwargs)
        except ValueError as exc:
            raise UsageError(f"--node: {exc}") from None
    try:
        check_writable_dir(cfg.out_dir, option="--out-dir")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        result = train(cfg)
    except (TrainSetupError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    if int(os.environ.get("RANK", "0")) == 0:
        f = result.final
        print(f"{cfg.data} {cfg.arch} {cfg.mode} T={cfg.T} seed={cfg.seed}: "
              f"test_acc={f.get('test_acc', float('nan')):.4f} "
              f"test_loss={f.get('test_loss', float('nan')):.4f} -> {cfg.out_dir}")
    return 0
