"""The analytic memory model against saved bytes counted with saved-tensor hooks.

The model lists what every layer stores; ``revsnn.analysis.measure.saved_tensor_bytes`` counts what autograd
actually saves (storage-deduplicated, parameters excluded). They must agree within 5% (in practice
exactly) for BPTT, checkpointing and the fused reversible mode, on VGG-11 and on a ResNet (shortcut
addends, downsampling shortcuts).
"""

import pytest
import torch

from revsnn.analysis.measure import saved_tensor_bytes
from revsnn.analysis.memory_model import layer_table, predict_saved_bytes, predict_total
from revsnn.models import build


def measured(model, batch, size):
    x = torch.rand(batch, model.config["in_channels"], size, size)
    params = list(model.parameters()) + list(model.buffers())
    return saved_tensor_bytes(model, x, params=params)[1].own


@pytest.mark.parametrize("mode", ["bptt", "checkpoint", "fused"])
def test_vgg11_prediction_within_5_percent(mode):
    T, B, S = 2, 1, 32
    model = build("vgg11", mode, T=T, seed=0)
    pred = predict_total(model, T=T, batch=B, image_size=S)
    meas = measured(model, B, S)
    assert abs(pred - meas) <= 0.05 * meas, (pred, meas)
    # the same prediction from the architecture name
    assert predict_total("vgg11", mode, T=T, batch=B, image_size=S) == pred


@pytest.mark.parametrize("mode, kw", [("fused", {}), ("autograd", {}),
                                      ("fused", {"fuse_bn": False}),
                                      ("bptt", {"node_kwargs": {"v_reset": None}})])
def test_resnet_prediction_within_5_percent(mode, kw):
    T, B, S = 2, 1, 8
    model = build("resnet18", mode, T=T, seed=0, **kw)
    pred = predict_total(model, T=T, batch=B, image_size=S)
    meas = measured(model, B, S)
    assert abs(pred - meas) <= 0.05 * meas, (pred, meas)


def test_rows_describe_what_is_stored():
    df = predict_saved_bytes("vgg11", "fused", T=4, batch=3, image_size=32)
    assert int(df["bytes"].sum()) == df.attrs["total_bytes"]
    assert not (df["kind"] == "BatchNorm").any()            # no BN input kept when fused
    codes = df[df["tensor"].str.contains("residual code")]
    assert len(codes) == 8 and (codes["itemsize"] == 1).all()
    # each node output Y is stored once; its consumers (maxpool, conv) share it
    ys = df[df["tensor"] == "output Y"]
    assert len(ys) == 8 and (ys["bytes"] > 0).all()
    assert df["shared"].sum() >= 8
    per_layer = layer_table(df)
    assert per_layer.iloc[-1]["layer"] == "total"
    assert per_layer.iloc[-1]["bytes"] == df.attrs["total_bytes"]


def test_claimed_reduction_vs_spikingjelly_at_the_issue_size():
    """VGG-11, 32×32, T=8: the fused network saves ≥ 2.5× fewer bytes than SpikingJelly's, and the
    node alone (BN not fused) ~2×; bytes scale linearly in the batch."""
    kw = dict(T=8, batch=16, image_size=32)
    sj = predict_total("vgg11", "bptt", **kw)                # SpikingJelly LIFNode saves the same
    fused = predict_total("vgg11", "fused", **kw)
    node_only = predict_total("vgg11", "fused", fuse_bn=False, **kw)
    assert sj / fused >= 2.5
    assert 1.8 <= sj / node_only < 2.5
    half = predict_total("vgg11", "fused", T=8, batch=8, image_size=32)
    double = predict_total("vgg11", "fused", T=8, batch=32, image_size=32)
    assert double - fused == 2 * (fused - half)          # linear in the batch (+ per-channel stats)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode only with an architecture"):
        predict_saved_bytes(build("convnet"), "fused")
    with pytest.raises(ValueError, match="batch"):
        predict_saved_bytes("convnet", "fused", batch=0)
