"""revsnn: memory-lean training of spiking neural networks with reversible spiking nodes.

The core pieces:

- :class:`LIF`, :class:`IF`: standard multi-step nodes equal to SpikingJelly's.
- :class:`ReversibleLIF`: a two-group node whose inputs and membranes are reconstructed exactly from
  its outputs during backward; ``backward="autograd" | "revnet" | "fused"``.
- :mod:`revsnn.strategy`: the registry of memory strategies (:class:`Strategy`, :class:`Preset`);
  :class:`MemoryMode` and :func:`make_node` name and build them.
- :func:`check_invertible`: reconstruction error and flipped spikes of the reversible node.
- :mod:`revsnn.analysis.measure`: saved bytes, peak memory and backward time as tidy rows.
- :class:`BinaryReversibleLIF` (exact binary-spike LIF, bit-exact inverse, ≤ 2 stored bits per
  neuron-step) and :class:`RevSequence` / :func:`rev_spiking_resnet` (reversible spiking blocks).
- :mod:`revsnn.models`, :mod:`revsnn.data`, :mod:`revsnn.training`: model zoo, offline data,
  training.
- :func:`convert` (:mod:`revsnn.conversion`): a network of your own (SpikingJelly or plain
  PyTorch) with its nodes replaced by any strategy's, BatchNorm fused, and a report.

The package reads like the architecture: :mod:`revsnn.functional` (pure maths) →
:mod:`revsnn.nodes` (the node protocol and the nodes) → :mod:`revsnn.strategy` (the registry) →
:mod:`revsnn.layers` (containers, units, reversible blocks) → :mod:`revsnn.models` (the zoo) →
:mod:`revsnn.analysis`, :mod:`revsnn.training`, :mod:`revsnn.bench` → :mod:`revsnn.cli`; a module
imports only from those before it (``tests/test_imports.py``).
"""

from ._version import __version__
from .conversion import convert
from .analysis.invertibility import InvertibilityReport, check_invertible, drift_table
from .functional.binary import pack_spikes, unpack_spikes
from .functional.lif import LIFParams, if_step, lif_step
from .functional.reversible import RevLIFParams
from .layers.reversible import RevBlock, RevSequence
from .layers.units import BinarySpikingUnit
from .models.builders import rev_spiking_resnet
from .nodes.base import ReconstructionError
from .nodes.binary import BinaryReversibleLIF
from .nodes.lif import IF, LIF, Checkpointed
from .nodes.reversible import ReversibleLIF
from .strategy import MemoryMode, Preset, Strategy, make_node
from .surrogate import ATan, Sigmoid, Surrogate
from .temporal import TemporalNetwork, TemporalUnit, TimestepBatchNorm2d, temporal_model


__all__ = [
    "LIF", "IF", "LIFParams", "lif_step", "if_step",
    "ReversibleLIF", "RevLIFParams", "ReconstructionError",
    "MemoryMode", "make_node", "Checkpointed", "Strategy", "Preset",
    "check_invertible", "InvertibilityReport", "drift_table",
    "Sigmoid", "ATan", "Surrogate",
    "BinaryReversibleLIF", "BinarySpikingUnit", "pack_spikes", "unpack_spikes",
    "RevBlock", "RevSequence", "rev_spiking_resnet",
    "TemporalNetwork", "TemporalUnit", "TimestepBatchNorm2d", "temporal_model",
    "convert", "__version__",
]
