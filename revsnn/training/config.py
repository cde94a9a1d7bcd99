"""What defines a training run (:class:`TrainConfig`) and what it returns (:class:`TrainResult`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
from torch import nn

from .. import strategy
from ..data import DATASETS, dataset_info
from ..models.encoders import ENCODERS

__all__ = ["TrainConfig", "TrainResult", "TrainSetupError", "METRICS_COLUMNS", "ENCODERS",
           "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "cosine")
METRICS_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
                   "epoch_time_s", "peak_memory_mib")


class TrainSetupError(ValueError):
    """A run that cannot start as configured (a checkpoint that does not match, a missing device):
    the user's to fix, unlike an error raised while training."""


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
        from ..conversion import is_user_model, user_modes
        from ..models import MODELS
        self.mode = strategy.parse(self.mode, command="train",           # ValueError names the
                                   arch=self.arch if self.arch in MODELS else None).name  # choices
        if is_user_model(self.arch):
            self.mode = user_modes("train", [self.mode])[0]
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
        for name, allowed in (("encoder", tuple(ENCODERS)), ("optimizer", OPTIMIZERS),
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
