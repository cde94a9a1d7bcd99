"""Spiking VGG-11/13/16: the tables live in :mod:`revsnn.models.configs`, the builder in
:mod:`revsnn.models.builders`."""

from .builders import spiking_vgg
from .configs import VGG_CONFIGS

__all__ = ["VGG_CONFIGS", "spiking_vgg"]
