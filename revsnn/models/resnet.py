"""Spiking ResNet-18/19: the tables live in :mod:`revsnn.models.configs`, the builder in
:mod:`revsnn.models.builders`."""

from .builders import spiking_resnet
from .configs import RESNET_CONFIGS
from .layers import BasicBlock

__all__ = ["BasicBlock", "RESNET_CONFIGS", "spiking_resnet"]
