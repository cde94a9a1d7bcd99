"""Training: one process or many (``torchrun``), resumable, deterministic with a seed.

- :mod:`revsnn.training.config`: :class:`TrainConfig` (what defines a run), :class:`TrainResult`.
- :mod:`revsnn.training.loop`: :func:`train`, the epoch loop, metrics files, :func:`collect_runs`.
- :mod:`revsnn.training.distributed`: process group, device placement, reductions.
- :mod:`revsnn.training.checkpoints`: checkpoints and the RNG state that resuming restores.
"""

from .checkpoints import CHECKPOINT, load_checkpoint
from .config import (ENCODERS, METRICS_COLUMNS, OPTIMIZERS, SCHEDULES, TrainConfig, TrainResult,
                     TrainSetupError)
from .loop import build_model, collect_runs, encode, train

__all__ = [
    "TrainConfig", "TrainResult", "TrainSetupError", "train", "build_model", "encode",
    "collect_runs", "load_checkpoint", "CHECKPOINT", "METRICS_COLUMNS", "ENCODERS", "OPTIMIZERS",
    "SCHEDULES",
]
