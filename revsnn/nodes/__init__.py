"""Spiking nodes: the protocol every node implements (:mod:`revsnn.nodes.base`) and its helpers."""
