"""A long-sequence task for the time-major strategy: digits read one row at a time, T ≥ 1024.

Each 8×8 scikit-learn digit (offline, 1797 real digits) becomes a sequence of its 8 rows, every row
held for T/8 steps: at T = 1024 a network sees each row for 128 steps and must integrate over the
whole sequence to classify it. The network is a spiking MLP of exact binary LIF units
(:func:`temporal_mlp`), trained time-major; :func:`long_sequence_run` trains it at a long T and
measures the activation peak of one training step at that T and at a short one, side by side.

>>> import torch
>>> rows_to_sequence(torch.arange(4.).view(1, 1, 2, 2), 4)[:, 0].tolist()
[[0.0, 1.0], [0.0, 1.0], [2.0, 3.0], [2.0, 3.0]]
"""

from __future__ import annotations

import math
import time
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..nodes.binary import BinaryReversibleLIF
from ..temporal import LinearSynapse, TemporalNetwork, TemporalUnit
from ..analysis.measure import activation_peak_bytes

__all__ = ["rows_to_sequence", "temporal_mlp", "long_sequence_run", "LONG_COLUMNS"]

LONG_COLUMNS = ["kind", "T", "batch", "hidden", "strategy", "peak_bytes", "peak_ratio_vs_short",
                "epochs", "train_acc", "test_acc", "seconds", "status", "error"]


def rows_to_sequence(images: torch.Tensor, T: int) -> torch.Tensor:
    """``[B, 1, R, W]`` images → ``[T, B, W]``: row r presented for steps r·T/R … (r + 1)·T/R − 1."""
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"rows_to_sequence: expected [B, 1, R, W] images, got "
                         f"{tuple(images.shape)}")
    rows = images.shape[2]
    if T < rows or T % rows:
        raise ValueError(f"rows_to_sequence: T = {T} must be a positive multiple of the "
                         f"{rows} rows")
    seq = images[:, 0].transpose(0, 1)                       # [R, B, W]
    return seq.repeat_interleave(T // rows, dim=0)


def temporal_mlp(in_features: int, hidden: Sequence[int] = (128, 128), num_classes: int = 10, *,
                 T: int = 8, backward: str = "temporal",
                 node_kwargs: Optional[dict] = None) -> TemporalNetwork:
    """A spiking MLP ``linear → binary LIF`` × len(hidden), then a linear readout, time-major."""
    units, c = [], in_features
    for h in hidden:
        units.append(TemporalUnit(LinearSynapse(c, int(h)), (len(units) - 1,),
                                  BinaryReversibleLIF(**(node_kwargs or {}))))
        c = int(h)
    return TemporalNetwork(units, nn.Linear(c, num_classes), T=T, backward=backward,
                           chunk_bytes=None)


def _peak(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return activation_peak_bytes(model, lambda: x.clone(), lambda out: F.cross_entropy(out, y))


def _accuracy(model, images, labels, T, batch) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            out = model(rows_to_sequence(images[i:i + batch], T))
            correct += int((out.argmax(1) == labels[i:i + batch]).sum())
    return correct / len(images)


def long_sequence_run(T: int = 1024, T_short: int = 8, *, epochs: int = 3, batch: int = 64,
                      hidden: Sequence[int] = (128, 128), lr: float = 1e-2, seed: int = 0,
                      limit: Optional[int] = None, with_bptt: bool = True) -> list:
    """Train :func:`temporal_mlp` on row-sequence digits at ``T``; measure one step's activation
    peak (parameters and gradients excluded) at ``T`` and ``T_short`` with the time-major
    backward, and (``with_bptt``) with plain autograd through the same network. Returns rows with
    :data:`LONG_COLUMNS`."""
    from ..data import load_dataset
    train, test = load_dataset("digits")
    xs, ys = train.images, train.targets
    xt, yt = test.images, test.targets
    if limit:
        xs, ys, xt, yt = xs[:limit], ys[:limit], xt[:limit], yt[:limit]
    torch.manual_seed(seed)
    base = dict(batch=batch, hidden="x".join(map(str, hidden)), status="ok", error="")
    rows = []
    x_probe, y_probe = xs[:batch], ys[:batch]
    short = None
    for t_steps in (T_short, T):
        for strategy, backward in (("temporal", "temporal"), ("bptt", "autograd")):
            if strategy == "bptt" and not with_bptt:
                continue
            model = temporal_mlp(xs.shape[-1], hidden, T=t_steps, backward=backward)
            row = dict(base, kind="memory", T=t_steps, strategy=strategy)
            try:
                row["peak_bytes"] = _peak(model, rows_to_sequence(x_probe, t_steps), y_probe)
            except (RuntimeError, MemoryError) as exc:          # out of memory is a result
                row.update(status="oom" if "memory" in str(exc).lower() else "error",
                           error=str(exc).splitlines()[0][:200])
            if strategy == "temporal" and t_steps == T_short:
                short = row.get("peak_bytes")
            rows.append(row)
    for row in rows:
        if row["strategy"] == "temporal" and short and row.get("peak_bytes"):
            row["peak_ratio_vs_short"] = row["peak_bytes"] / short
    torch.manual_seed(seed)
    model = temporal_mlp(xs.shape[-1], hidden, T=T)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(xs))
        model.train()
        for i in range(0, len(xs), batch):
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(rows_to_sequence(xs[idx], T)), ys[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    rows.append(dict(base, kind="training", T=T, strategy="temporal", epochs=epochs,
                     train_acc=_accuracy(model, xs, ys, T, 256),
                     test_acc=_accuracy(model, xt, yt, T, 256), seconds=seconds))
    for row in rows:
        for col in LONG_COLUMNS:
            row.setdefault(col, math.nan if col.endswith(("acc", "bytes", "ratio_vs_short",
                                                           "seconds")) else "")
    return rows
