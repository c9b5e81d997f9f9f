"""The one rule for the size a photo is seen at by the network, in training, validation and inference.

The network runs on the photo resized so that its longer side is the working size (or kept at its
own size when smaller: the network never runs above the photo's size), keeping the aspect ratio,
each side rounded to the nearest multiple of the model's size multiple (at least one multiple). Shrinking averages pixel areas, enlarging is bilinear (`shm.upsampling.resize`; its
TensorFlow twin for `tf.data` is `shm.upsampling.resize_tf`, tested equal).

TensorFlow-free, like the inference path it serves; `network_size_tf` is the same rule as TF ops.
"""

from __future__ import annotations

from models.presets import PRESETS

# A multiple every preset's model takes (lite 32 for MobileNetV2's stride, pspnet50 16).
DEFAULT_SIZE_MULTIPLE = max(settings["size_multiple"] for settings in PRESETS.values())


def network_size(height: int, width: int, working_size: int,
                 multiple: int = DEFAULT_SIZE_MULTIPLE) -> tuple[int, int]:
    """The (h, w) the network sees a `height` x `width` photo at (see the module docstring)."""
    if height < 1 or width < 1:
        raise ValueError(f"a photo has positive sides, got {height}x{width}")
    scale = min(working_size, max(height, width)) / max(height, width)
    # Python's round() and tf.round() both round half to even: the two rules agree on ties too.
    return tuple(max(multiple, round(side * scale / multiple) * multiple) for side in (height, width))


def network_size_tf(hw, working_size: int, multiple: int = DEFAULT_SIZE_MULTIPLE):
    """`network_size` as TF ops: an int32 (2,) tensor of (height, width) -> int32 (2,) (h, w)."""
    import tensorflow as tf

    hw = tf.cast(hw, tf.float64)
    longer = tf.reduce_max(hw)
    scale = tf.minimum(tf.constant(working_size, tf.float64), longer) / longer
    sides = tf.round(hw * scale / multiple) * multiple
    return tf.cast(tf.maximum(sides, multiple), tf.int32)
