"""Faults while training: checkpoints written atomically (a run killed mid-write resumes bit for bit
from the last complete one) and resuming from a bad checkpoint is a clear message, not a
traceback."""

from __future__ import annotations

import io
import re
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from revsnn.cli import main
from revsnn.training import CHECKPOINT, load_checkpoint, train
from revsnn.training import checkpoints
from revsnn.training.config import TrainSetupError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")

# The model, as source, so that a child process builds exactly the same one.
MODEL_SRC = textwrap.dedent('''
    import torch
    from torch import nn
    from revsnn import make_node
    from revsnn.training import TrainConfig

    class Tiny(nn.Module):
        def __init__(self, mode, in_channels, num_classes):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.node = make_node(mode)
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(8 * 4 * 4, num_classes)

        def forward(self, x):
            T, B = x.shape[:2]
            h = self.bn(nn.functional.adaptive_avg_pool2d(self.conv(x.flatten(0, 1)), 4))
            h = self.node(h.unflatten(0, (T, B)))
            return self.fc(self.drop(h.flatten(2)))

    def tiny(cfg, info):
        return Tiny(cfg.mode, info.in_channels, info.num_classes)

    def config(**kw):
        base = dict(data="digits", arch="tiny", mode="fused", T=2, batch=64, epochs=1, lr=3e-3,
                    quiet=True, limit_train=256, limit_test=128)
        base.update(kw)
        return TrainConfig(**base)
''')
_ns: dict = {}
exec(MODEL_SRC, _ns)
tiny, config = _ns["tiny"], _ns["config"]


def _weights(result) -> dict:
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


# -- atomic writes -------------------------------------------------------------------------------
def test_write_atomic_fsyncs_the_file_and_the_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(checkpoints.os, "fsync", lambda fd: synced.append(os.fstat(fd)) or real(fd))
    target = tmp_path / "c.pt"
    checkpoints.save_atomic({"a": torch.ones(3)}, target)
    kinds = [("dir" if os.path.isdir(tmp_path) and s.st_ino == tmp_path.stat().st_ino else "file")
             for s in synced]
    assert kinds == ["file", "dir"]
    assert torch.equal(torch.load(target)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]       # no temporary left behind


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "c.pt"
    checkpoints.save_atomic({"v": 1}, target)

    def half_then_fail(f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full (simulated)")
    with pytest.raises(OSError, match="disk full"):
        checkpoints.write_atomic(target, half_then_fail)
    assert torch.load(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


CHILD = MODEL_SRC + textwrap.dedent('''
    import io, sys, time
    from revsnn.training import train

    torch.set_num_threads(1)
    real_save, saves = torch.save, []

    def save_then_die(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) < 2:
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])        # the second checkpoint, half written ...
        f.flush()
        print("MIDWRITE", flush=True)
        time.sleep(120)                        # ... when the parent kills this process

    torch.save = save_then_die
    train(config(epochs=3, out_dir=sys.argv[1]), tiny)
''')


def test_training_killed_mid_checkpoint_resumes_bit_identically(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        assert line.strip() == "MIDWRITE", child.stderr.read()
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    ckpt = load_checkpoint(out / CHECKPOINT)                   # the last complete one
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")]   # the half-written one
    resumed = train(config(epochs=3, out_dir=str(out), resume=True), tiny)
    straight = train(config(epochs=3, out_dir=str(tmp_path / "straight")), tiny)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]
    assert load_checkpoint(out / CHECKPOINT)["epoch"] == 3


# -- resuming from a bad checkpoint ----------------------------------------------------------------
def _good_checkpoint(folder: Path) -> bytes:
    train(config(out_dir=str(folder)), tiny)
    return (folder / CHECKPOINT).read_bytes()


def _corrupt(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 4096]) + data[mid + 4096:]


def _save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


BAD = {
    "empty": (lambda good: b"", "is empty (0 bytes)"),
    "truncated": (lambda good: good[: len(good) // 3], "is not a readable checkpoint"),
    "corrupted": (_corrupt, "is not a readable checkpoint"),
    "text": (lambda good: b"epoch=3\nweights=...\n", "is not a readable checkpoint"),
    "foreign tensor": (lambda good: _save(torch.ones(3)), "is not a revsnn training checkpoint"),
    "foreign dict": (lambda good: _save({"state_dict": {"w": torch.ones(2)}}),
                     "is not a revsnn training checkpoint"),
    "other format": (lambda good: _save({"format": 99}), "has checkpoint format 99"),
    "incomplete": (lambda good: _save({"format": 1, "epoch": 1}),
                   "missing or malformed: config, world_size, model"),
}


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> bytes:
    return _good_checkpoint(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize("case", sorted(BAD))
def test_resume_from_a_bad_checkpoint_is_a_clear_message(case, good_checkpoint, tmp_path,
                                                         monkeypatch, capsys):
    make, message = BAD[case]
    path = tmp_path / "bad.pt"
    path.write_bytes(make(good_checkpoint))
    with pytest.raises(TrainSetupError, match=re.escape(message)):
        train(config(out_dir=str(tmp_path / "run"), resume=str(path)), tiny)
    monkeypatch.setattr("revsnn.training.loop.build_model", tiny)
    rc = main(["train", "--data", "digits", "--arch", "tiny", "--mode", "fused", "-T", "2",
               "--batch", "64", "--limit-train", "256", "--limit-test", "128", "--quiet",
               "--out-dir", str(tmp_path / "run"), "--resume", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot resume" in err and message in err and "Traceback" not in err


def test_resume_from_a_checkpoint_of_another_model_is_a_clear_message(good_checkpoint, tmp_path):
    ckpt = torch.load(io.BytesIO(good_checkpoint), weights_only=True)
    ckpt["model"].pop("fc.weight")
    path = tmp_path / "other.pt"
    path.write_bytes(_save(ckpt))
    with pytest.raises(TrainSetupError, match="does not fit this run's model or optimizer"):
        train(config(out_dir=str(tmp_path / "run"), resume=str(path)), tiny)
