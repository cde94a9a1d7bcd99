"""Layers between the nodes and the networks: per-step containers, conv-BN-node units (and the binary
units that recompute their synapse), BatchNorm fused into a reversible node, reversible blocks.

- :mod:`~revsnn.layers.containers`: stateless layers over ``[T, B, ...]``.
- :mod:`~revsnn.layers.units`: :class:`~revsnn.layers.units.NodeSpec`, conv-BN-node units,
  residual blocks, heads.
- :mod:`~revsnn.layers.bn_node`: the fused BN + node unit.
- :mod:`~revsnn.layers.reversible`: reversible blocks and stacks (E7.x).
"""
