"""revsnn.training under DistributedDataParallel: two CPU processes (Gloo) equal one process.

Two processes are spawned with the environment ``torchrun`` would set (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``) and each calls :func:`train`,
so the real code path runs: process-group initialisation from the environment, the DDP wrapper,
the distributed sampler, the all-reduced metrics, rank-0-only files.

Setup: 16 training digits, ``batch=8`` per process, one epoch, so each run takes exactly one step.
The single-process reference uses ``batch=16``: its one batch is the concatenation of the two
processes' batches (the distributed sampler deals the same permutation out round-robin). After the
step the parameters' ``.grad`` hold the DDP-averaged gradients, which must equal the
single-process gradients over the whole batch, and so must the weights after one SGD step.

The network (:class:`TinyNet` without BatchNorm and without dropout) has no per-process state: BN
would normalise each half-batch with its own statistics and make the two runs differ (SyncBatchNorm,
``sync_bn=True``, would fix that); dropout would draw different masks. The reversible node
(``mode="fused"``) has no parameters and needs nothing special under DDP.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch.testing import assert_close

from revsnn.training import TrainConfig, train
from test_train import TinyNet

MODES = ("fused", "bptt")


def plain_tiny(cfg, info):
    return TinyNet(cfg.mode, info.in_channels, info.num_classes, dropout=0.0, bn=False)


def _config(mode: str, batch: int, out_dir=None) -> TrainConfig:
    return TrainConfig(data="digits", arch="tiny", mode=mode, T=3, batch=batch, epochs=1, lr=0.5,
                       optimizer="sgd", momentum=0.0, seed=11, device="cpu", quiet=True,
                       limit_train=16, limit_test=40, out_dir=out_dir)


def _grads(model) -> dict:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, ports: list, tmp: str) -> None:
    torch.set_num_threads(1)
    for mode, port in zip(MODES, ports):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
        result = train(_config(mode, 8, out_dir=os.path.join(tmp, f"out_{mode}")), plain_tiny)
        assert not torch.distributed.is_initialized()      # train() cleans up the group it made
        torch.save({"grads": _grads(result.model), "state": result.model.state_dict(),
                    "history": result.history, "world_size": result.world_size},
                   os.path.join(tmp, f"{mode}_rank{rank}.pt"))


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, [_free_port() for _ in MODES], str(tmp)), nprocs=2, join=True)
    return tmp


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", MODES)
def test_ddp_two_processes_average_to_the_single_process_gradient(ddp_runs, mode, monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    torch.set_num_threads(1)
    single = train(_config(mode, 16), plain_tiny)
    ranks = [torch.load(ddp_runs / f"{mode}_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    ref = _grads(single.model)
    assert any(g.abs().sum() > 0 for g in ref.values())            # a step that did something
    for r in ranks:
        assert r["grads"].keys() == ref.keys()
        for name, g in ref.items():
            assert_close(r["grads"][name], g, rtol=1e-5, atol=1e-7, msg=name)
        for name, w in single.model.state_dict().items():
            assert_close(r["state"][name], w, rtol=1e-5, atol=1e-7, msg=name)
    # metrics are all-reduced over both shards: the same loss and accuracy as one process
    for key in ("train_loss", "test_loss"):
        assert_close(ranks[0]["history"][0][key], single.final[key], rtol=1e-5, atol=1e-7)
    assert ranks[0]["history"][0]["test_acc"] == single.final["test_acc"]
    assert (ddp_runs / f"out_{mode}" / "metrics.csv").is_file()    # written once, by rank 0
