"""Input checks shared by every node; they live in :mod:`revsnn.nodes.base`."""

from .nodes.base import check_sequence

__all__ = ["check_sequence"]
