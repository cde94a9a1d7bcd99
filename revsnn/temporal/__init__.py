"""Time-major training: the whole network's backward walks t = T−1 … 0, so memory is flat in T.

- :class:`TemporalNetwork`, :class:`TemporalUnit`, :class:`Residual`: the engine
  (NOTE [time-major backward] in :mod:`revsnn.temporal.engine`).
- :class:`TimestepBatchNorm2d`: BatchNorm with per-step statistics, which an exact time-major walk
  needs (NOTE in :mod:`revsnn.temporal.bn`).
- the ``temporal`` preset of :mod:`revsnn.strategy`, registered here with its builder, so that
  ``revsnn.models.build(arch, "temporal")``, every ``--modes`` and the dashboard offer it.
"""

from .bn import TimestepBatchNorm2d, collect_statistics, frozen_statistics
from .engine import DEFAULT_CHUNK_BYTES, TEMPORAL_BACKWARDS, TemporalNetwork, TemporalUnit
from .synapse import (ConvBN, LinearSynapse, ModuleSynapse, Residual, StepMaxPool, Synapse,
                      as_synapse)
from .models import (TEMPORAL_ARCHS, build_temporal, temporal_convnet, temporal_model,
                     temporal_resnet, temporal_vgg)
from .. import strategy as _strategy

TEMPORAL = _strategy.Strategy(node="binary", backward="fused", reconstruct="reverse",
                              schedule="temporal")
"""The time-major strategy: the exact binary LIF, walked back step by step through every layer."""

if "temporal" not in _strategy.names():
    _strategy.register(_strategy.Preset(
        "temporal", TEMPORAL, "Time-major binary LIF (temporal)", "#222222", "hexagram",
        families=("vgg", "resnet", "convnet"), commands=frozenset({"network", "budget", "train"}),
        default_for=frozenset({"network", "budget"}), builder=build_temporal,
        description="time-major walk over every layer with per-step BatchNorm: 2 bits per "
                    "neuron-step, memory flat in T"))

__all__ = ["TemporalNetwork", "TemporalUnit", "Synapse", "ConvBN", "Residual", "LinearSynapse",
           "ModuleSynapse", "as_synapse", "StepMaxPool", "DEFAULT_CHUNK_BYTES", "TimestepBatchNorm2d",
           "collect_statistics", "frozen_statistics", "TEMPORAL_BACKWARDS", "TEMPORAL_ARCHS", "TEMPORAL",
           "temporal_model", "temporal_vgg", "temporal_resnet", "temporal_convnet", "build_temporal"]
