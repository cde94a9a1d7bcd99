"""Spiking nodes, every one implementing the node protocol (NOTE [node protocol] in
:mod:`revsnn.nodes.base`); their maths is in :mod:`revsnn.functional`.

- :mod:`~revsnn.nodes.base`: the protocol, :class:`~revsnn.nodes.base.Stored`, the drift guard, the
  input and exact-range checks.
- :mod:`~revsnn.nodes.lif`: LIF, IF (SpikingJelly's semantics) and the checkpointing wrapper.
- :mod:`~revsnn.nodes.reversible`: ReversibleLIF and its autograd Function.
- :mod:`~revsnn.nodes.binary`: BinaryReversibleLIF and its autograd Function.
- :mod:`~revsnn.nodes.spikingjelly`: SpikingJelly's LIFNode (the baseline).
- :mod:`~revsnn.nodes.recompute`: what a recomputing layer replays (BN statistics, RNG, state).
"""
