"""revsnn.training and ``revsnn train``: learning, files, exact resumption, determinism, bad input,
the CLI contract.

Most tests train a tiny local network (:class:`TinyNet`, conv → node → dropout → linear) on the
offline digits for one or two epochs (well under a second each), so they test the loop rather than
the model zoo; ``test_zoo_convnet_trains_on_digits`` covers the zoo when it is installed.
"""

from __future__ import annotations

import argparse
import csv
import json

import pytest
import torch
from torch import nn

from revsnn import MemoryMode, make_node
from revsnn.cli.train import add_arguments, run
from revsnn.training import CHECKPOINT, METRICS_COLUMNS, TrainConfig, encode, load_checkpoint, train



pytestmark = pytest.mark.usefixtures("one_thread")

class TinyNet(nn.Module):
    """Time-first [T, B, C, H, W] → conv 3×3 → pool to 4×4 (→ BN) → spiking node → dropout → linear.

    Without BN the binary LIF rarely fires at initialisation and learns little in one epoch; the
    DDP test builds it without BN (and without dropout) so per-process statistics cannot differ.
    """

    def __init__(self, mode, in_channels: int, num_classes: int, dropout: float = 0.2,
                 bn: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8) if bn else nn.Identity()
        self.node = make_node(mode)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * 4 * 4, num_classes)

    def forward(self, x):
        T, B = x.shape[:2]
        h = self.bn(nn.functional.adaptive_avg_pool2d(self.conv(x.flatten(0, 1)), 4))
        h = self.node(h.unflatten(0, (T, B)))
        return self.fc(self.drop(h.flatten(2)))          # [T, B, classes]


def tiny(cfg, info):
    return TinyNet(cfg.mode, info.in_channels, info.num_classes)


def config(**kw) -> TrainConfig:
    base = dict(data="digits", arch="tiny", mode="fused", T=2, batch=64, epochs=1, lr=3e-3,
                quiet=True, limit_train=512, limit_test=256)
    base.update(kw)
    return TrainConfig(**base)


def _state(result):
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("mode", [MemoryMode.REVERSIBLE_FUSED, MemoryMode.BPTT])
def test_one_epoch_on_digits_learns(mode):
    result = train(config(mode=mode.value, lr=1e-2, limit_train=None, limit_test=None), tiny)
    row = result.final
    # chance is 10 % and the initial loss ln(10) ≈ 2.30 (seen: bptt 0.82 / 1.40, fused 0.92 / 0.35)
    assert row["test_acc"] > 0.6, row
    assert row["test_loss"] < 2.0, row


def test_rate_encoder_learns_too():
    result = train(config(encoder="rate", T=4, limit_train=None, limit_test=None), tiny)
    assert result.final["test_acc"] > 0.3, result.final


def test_metrics_csv_and_files(tmp_path):
    out = tmp_path / "run"
    result = train(config(epochs=2, out_dir=str(out)), tiny)
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == METRICS_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[-1]["test_acc"]) == pytest.approx(result.final["test_acc"])
    assert rows[0]["peak_memory_mib"] == ""              # CPU: no CUDA peak
    assert json.loads((out / "config.json").read_text())["mode"] == "fused"
    assert json.loads((out / "results.json").read_text())["final"]["epoch"] == 2
    ckpt = load_checkpoint(out / CHECKPOINT)
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    assert {"model", "optimizer", "rng", "config"} <= ckpt.keys()


def test_resume_continues_exactly(tmp_path):
    """2 epochs straight == 1 epoch, then resume to 2: same weights, optimizer state and metrics.

    TinyNet has dropout, so this fails unless the RNG state is restored too.
    """
    straight = train(config(epochs=2, out_dir=str(tmp_path / "a")), tiny)
    train(config(epochs=1, out_dir=str(tmp_path / "b")), tiny)
    resumed = train(config(epochs=2, out_dir=str(tmp_path / "b"), resume=True), tiny)
    _assert_same_weights(_state(straight), _state(resumed))
    opt_a = load_checkpoint(tmp_path / "a" / CHECKPOINT)["optimizer"]["state"]
    opt_b = load_checkpoint(tmp_path / "b" / CHECKPOINT)["optimizer"]["state"]
    for k in opt_a:
        assert torch.equal(opt_a[k]["exp_avg_sq"], opt_b[k]["exp_avg_sq"])
    for ra, rb in zip(straight.history, resumed.history):
        assert ra["train_loss"] == rb["train_loss"] and ra["test_acc"] == rb["test_acc"]
    with open(tmp_path / "b" / "metrics.csv") as f:
        assert len(f.readlines()) == 3                    # header + both epochs


def test_resume_refuses_a_different_config(tmp_path):
    train(config(out_dir=str(tmp_path)), tiny)
    with pytest.raises(ValueError, match="lr: checkpoint 0.003, now 0.001"):
        train(config(epochs=2, lr=1e-3, out_dir=str(tmp_path), resume=True), tiny)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(config(out_dir=str(tmp_path / "empty"), resume=True), tiny)


def test_same_seed_same_weights_other_seed_differs():
    a = _state(train(config(seed=3), tiny))
    b = _state(train(config(seed=3), tiny))
    c = _state(train(config(seed=4), tiny))
    _assert_same_weights(a, b)
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


@pytest.mark.parametrize("kw,match", [
    ({"batch": 0}, "batch must be a positive integer"),
    ({"T": 0}, "T must be a positive integer"),
    ({"epochs": -1}, "epochs must be a positive integer"),
    ({"mode": "magic"}, "unknown memory mode 'magic'"),
    ({"data": "imagenet"}, "unknown dataset 'imagenet'"),
    ({"encoder": "poisson"}, "unknown encoder 'poisson'"),
    ({"optimizer": "lion"}, "unknown optimizer 'lion'"),
    ({"lr": 0.0}, "lr must be a positive number"),
])
def test_bad_config_is_a_clear_value_error(kw, match):
    with pytest.raises(ValueError, match=match):
        config(**kw)


def test_unknown_arch_is_a_clear_value_error():
    pytest.importorskip("revsnn.models", reason="the model zoo is not installed")
    with pytest.raises(ValueError, match="nope"):
        train(config(arch="nope"))


def test_encode_shapes_and_rate_statistics():
    x = torch.rand(3, 1, 4, 4)
    direct = encode(x, 5, "direct")
    assert direct.shape == (5, 3, 1, 4, 4) and torch.equal(direct[4], x)
    g = torch.Generator().manual_seed(0)
    rate = encode(torch.full((2000,), 0.25).view(1, 2000), 8, "rate", g)
    assert set(rate.unique().tolist()) <= {0.0, 1.0}
    assert abs(rate.mean().item() - 0.25) < 0.02
    seq = torch.randn(2, 5, 2, 3, 3)
    assert torch.equal(encode(seq, 5, "direct", sequence=True)[:, 1], seq[1])
    with pytest.raises(ValueError, match="frames"):
        encode(seq, 4, "direct", sequence=True)


def _parse(argv):
    return add_arguments(argparse.ArgumentParser()).parse_args(argv)


def test_cli_run_quiet_writes_out_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("revsnn.training.loop.build_model", tiny)
    out = tmp_path / "cli"
    args = _parse(["--data", "digits", "--arch", "tiny", "--mode", "REVERSIBLE_FUSED", "-T", "2",
                   "--epochs", "1", "--batch", "64", "--limit-train", "128", "--limit-test", "64",
                   "--node", "tau=2.0", "--out-dir", str(out), "--quiet"])
    assert run(args) == 0
    assert {p.name for p in out.iterdir()} == {"config.json", "metrics.csv", "checkpoint.pt",
                                               "results.json"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["mode"] == "fused" and cfg["node_kwargs"] == {"tau": 2.0} and cfg["T"] == 2
    captured = capsys.readouterr()
    assert "test_acc=" in captured.out and "epoch 1/1" not in captured.err    # quiet


def test_cli_bad_input_is_a_usage_error(tmp_path):
    from revsnn.cli import UsageError, main
    with pytest.raises(UsageError, match="unknown memory mode"):
        run(_parse(["--mode", "magic", "--out-dir", str(tmp_path)]))
    assert main(["train", "--data", "cifar10", "--data-dir", str(tmp_path / "none"),
                 "--out-dir", str(tmp_path), "--quiet"]) == 2
    with pytest.raises(SystemExit):
        _parse(["--batch", "0"])


def test_zoo_convnet_trains_on_digits():
    models = pytest.importorskip("revsnn.models", reason="the model zoo is not installed")
    assert hasattr(models, "build")
    result = train(config(arch="convnet", mode="fused", limit_train=128, limit_test=64))
    assert result.final["train_loss"] < 2.5                # learning itself is tested above
    assert isinstance(result.model, models.SpikingNet)


def test_sync_bn_turns_off_the_zoo_bn_fusion():
    """The fused BN+node unit computes batch statistics itself and would bypass SyncBatchNorm."""
    models = pytest.importorskip("revsnn.models", reason="the model zoo is not installed")
    from revsnn.data import dataset_info
    from revsnn.training import build_model
    info = dataset_info("digits")
    fused = build_model(config(arch="convnet"), info)
    synced = build_model(config(arch="convnet", sync_bn=True), info)
    blocks = [m for m in fused.modules() if isinstance(m, models.ConvBNNode)]
    assert blocks and all(m.fuse_bn for m in blocks)
    assert not any(m.fuse_bn for m in synced.modules() if isinstance(m, models.ConvBNNode))
