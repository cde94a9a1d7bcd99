"""Bring your own network: any ``nn.Module`` with spiking nodes (SpikingJelly's, revsnn's, plain
PyTorch layers around them) run under any memory strategy of :mod:`revsnn.strategy`.

- :func:`convert` (also ``revsnn.convert``): every node replaced by the strategy's, every
  ``conv/linear → BN → node`` chain fused where the strategy fuses BN, every weight left under its
  name; returns ``(model, ConversionReport)``; :func:`to_spikingjelly`: the way back.
- :mod:`~revsnn.conversion.nodes`: which modules are nodes and how their hyperparameters carry over.
- :mod:`~revsnn.conversion.graph`: the data flow read with ``torch.fx`` (which BN feeds which node).
- :mod:`~revsnn.conversion.fused`: a user's BN run inside the node after it.
- :mod:`~revsnn.conversion.temporal`: the network rebuilt as time-major units (``temporal``), with
  per-timestep BatchNorm and the user's state-dict names.
- :mod:`~revsnn.conversion.examples`: networks written as users write them (plain PyTorch,
  SpikingJelly layers, SEW-ResNet blocks).
- :mod:`~revsnn.conversion.factory`: ``package.module:factory`` strings, and the wrapper that
  gives a user's network the zoo's interface for the benchmarks and the training loop.
"""

from .core import ConversionError, ConversionReport, NodeRecord, convert, find_nodes, to_spikingjelly
from .factory import (UserNetwork, convertible, is_user_model, load_factory, user_modes,
                      user_network)

__all__ = ["convert", "to_spikingjelly", "ConversionReport", "NodeRecord", "ConversionError",
           "find_nodes", "load_factory", "user_network", "UserNetwork", "is_user_model", "convertible",
           "user_modes"]
