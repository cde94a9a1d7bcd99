"""revsnn: memory-lean training of spiking neural networks with reversible spiking nodes.

The core pieces:

- :class:`LIF`, :class:`IF`: standard multi-step nodes equal to SpikingJelly's.
- :class:`ReversibleLIF`: a two-group node whose inputs and membranes are reconstructed exactly from
  its outputs during backward; ``backward="autograd" | "revnet" | "fused"``.
- :mod:`revsnn.strategy`: the registry of memory strategies (:class:`Strategy`, :class:`Preset`);
  :class:`MemoryMode` and :func:`make_node` name and build them.
- :func:`check_invertible`: reconstruction error and flipped spikes of the reversible node.
- :mod:`revsnn.measure`: saved bytes, peak memory and backward time as tidy rows.
- :class:`BinaryReversibleLIF` (exact binary-spike LIF, bit-exact inverse, ≤ 2 stored bits per
  neuron-step) and :class:`RevSequence` / :func:`rev_spiking_resnet` (reversible spiking blocks).
- :mod:`revsnn.models`, :mod:`revsnn.data`, :mod:`revsnn.train`: model zoo, offline data, training.
"""

from .binary import BinaryReversibleLIF, BinarySpikingUnit, pack_spikes, unpack_spikes
from .blocks import RevBlock, RevSequence
from .invertibility import InvertibilityReport, check_invertible, drift_table
from .models.builders import rev_spiking_resnet
from .neuron import IF, LIF, Checkpointed, LIFParams, if_step, lif_step
from .strategy import MemoryMode, Preset, Strategy, make_node
from .reversible import ReconstructionError, ReversibleLIF, RevLIFParams
from .surrogate import ATan, Sigmoid, Surrogate

__version__ = "0.1.0"

__all__ = [
    "LIF", "IF", "LIFParams", "lif_step", "if_step",
    "ReversibleLIF", "RevLIFParams", "ReconstructionError",
    "MemoryMode", "make_node", "Checkpointed", "Strategy", "Preset",
    "check_invertible", "InvertibilityReport", "drift_table",
    "Sigmoid", "ATan", "Surrogate",
    "BinaryReversibleLIF", "BinarySpikingUnit", "pack_spikes", "unpack_spikes",
    "RevBlock", "RevSequence", "rev_spiking_resnet",
    "__version__",
]
