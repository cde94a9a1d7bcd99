"""The zoo's architectures as data: channel lists and stage tables, no modules.

- VGG-11/13/16 (:data:`VGG_CONFIGS`): channels per conv3×3-BN-node layer, ``"M"`` a 2×2 max pool;
  then global average pooling and one linear classifier (the usual CIFAR form of VGG in SNN papers).
- ResNet-18/19 (:data:`RESNET_CONFIGS`): CIFAR stem (3×3 conv, no initial max pool) and stages of
  basic blocks. ResNet-19 is Zheng et al. 2021 ("Going Deeper With Directly-Trained Larger SNNs",
  tdBN): stem 128, stages [3, 3, 2] with 128/256/512 channels, a 256-unit linear-node layer.
- The digits ConvNet (:data:`CONVNET_CONFIGS`): ``[conv3×3-BN-node, maxpool]`` × 2 with 32/64
  channels, average pooling to 2×2, a linear classifier (any input of at least 4×4).
- The reversible-block ResNets (:data:`REVRESNET_CONFIGS`): reversible blocks per stage; three stages
  of widths w, 2w, 4w.
"""

__all__ = ["VGG_CONFIGS", "RESNET_CONFIGS", "CONVNET_CONFIGS", "REVRESNET_CONFIGS"]

VGG_CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
}
"""Channels per conv block, ``"M"`` for a 2×2 max pool."""

RESNET_CONFIGS = {
    # stem channels, ((channels, blocks, stride), ...), hidden units of the head
    "resnet18": (64, ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)), 0),
    "resnet19": (128, ((128, 3, 1), (256, 3, 2), (512, 2, 2)), 256),
}
"""Stem channels, ``((channels, blocks, stride), …)`` per stage, hidden units of the head."""

CONVNET_CONFIGS = {
    "convnet": ((32, "M", 64, "M"), 2),
}
"""A channel list like :data:`VGG_CONFIGS`'s and the output size of the head's average pool."""

REVRESNET_CONFIGS = {
    "revresnet_s": (2, 2, 2),
    "revresnet_m": (4, 4, 4),
    "revresnet_l": (8, 8, 8),
}
"""Reversible blocks per stage of the named variants (three stages, widths w, 2w, 4w)."""
