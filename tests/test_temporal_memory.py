"""The analytic activation peak of the time-major strategy (revsnn.temporal.memory) against the
peak measured at the dispatcher, for one layer per channel range and for many ranges per layer
(where the max pool's backward at the unpooled size is the largest moment)."""

import pytest
import torch
import torch.nn.functional as F

from revsnn.analysis.measure import activation_peak_bytes
from revsnn.temporal import temporal_model
from revsnn.temporal.memory import predict_peak_bytes


@pytest.mark.parametrize("arch, size, chunk", [("vgg11", 32, None), ("vgg11", 32, 64 * 1024),
                                               ("convnet", 28, 16 * 1024)])
def test_predicted_activation_peak_within_ten_percent(arch, size, chunk):
    torch.manual_seed(0)
    net = temporal_model(arch, T=2)
    if chunk is not None:
        net.chunk_bytes = chunk                        # many channel ranges per layer
    channels = 1 if arch == "convnet" else 3
    x = torch.rand(8, channels, size, size)
    y = torch.randint(0, 10, (8,))
    measured = activation_peak_bytes(net, lambda: x, lambda out: F.cross_entropy(out, y))
    predicted = predict_peak_bytes(net, x)
    assert abs(predicted - measured) <= 0.10 * measured, (predicted, measured)
