"""Memory strategies under their historic module name: see :mod:`revsnn.strategy`.

>>> MemoryMode("fused") is MemoryMode.REVERSIBLE_FUSED
True
"""

from .neuron import Checkpointed
from .strategy import MemoryMode, make_node

__all__ = ["MemoryMode", "make_node", "Checkpointed"]
