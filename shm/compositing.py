"""The matting equation `I = alpha F + (1 - alpha) B`, and the background it composites onto.

`composite` is plain arithmetic, so the same function serves numpy arrays (inference's cut-outs) and
TensorFlow / Keras tensors (the compositional loss, training's compositing onto new backgrounds).
`fit_background` (numpy: inference's `--background`) and `fit_background_tf` (TF ops: training's
random backgrounds) are one rule, tested equal: the background scaled to cover the picture, keeping
its aspect ratio, then a window of the picture's size cut out of it. Each imports the library it
needs when called, so this module needs neither.
"""

from __future__ import annotations

import math


def composite(alpha, foreground, background):
    """`alpha * foreground + (1 - alpha) * background`, elementwise with broadcasting.

    `alpha` (..., 1) or broadcastable to the colours; `foreground` / `background` (..., 3), or one
    colour (3,) for the background; floats in [0, 1].
    """
    # This form (not `B + alpha (F - B)`) keeps opaque and transparent pixels exactly F and B.
    return alpha * foreground + (1.0 - alpha) * background


def fit_background(background, height: int, width: int, position: tuple[float, float] = (0.5, 0.5)):
    """A colour (3,) as it is; an image (H, W, 3) (numpy, uint8 or float) scaled to cover `height` x
    `width` (`shm.upsampling.resize`: area to shrink, bilinear to enlarge), each side the nearest
    whole pixel but at least the target's, then cropped to it.

    `position`: where the window lies, as the fractions (vertical, horizontal) of the spare room
    above and left of it, rounded down to whole pixels: (0, 0) top left, (0.5, 0.5) centred.
    """
    if background.ndim == 1:
        return background
    from shm.upsampling import resize

    source_height, source_width = background.shape[:2]
    scale = max(height / source_height, width / source_width)
    scaled_height = max(height, round(source_height * scale))
    scaled_width = max(width, round(source_width * scale))
    top = math.floor((scaled_height - height) * position[0])
    left = math.floor((scaled_width - width) * position[1])
    return resize(background, scaled_height, scaled_width)[top:top + height, left:left + width]


def fit_background_tf(background, height, width, position):
    """`fit_background` of an image as TF ops (float32 (H, W, 3) in [0, 1]; `height`, `width` ints
    or int32 tensors; `position` a float (2,) tensor), resized by `shm.upsampling.resize_tf`,
    the TF twin of `shm.upsampling.resize`."""
    import tensorflow as tf

    from shm.upsampling import resize_tf

    # float64, as Python computes `fit_background`'s sizes: both round half to even on the same numbers.
    source = tf.cast(tf.shape(background)[:2], tf.float64)
    target = tf.cast(tf.stack([height, width]), tf.float64)
    scale = tf.reduce_max(target / source)
    scaled = tf.maximum(tf.round(source * scale), target)
    offset = tf.cast(tf.floor((scaled - target) * tf.cast(position, tf.float64)), tf.int32)
    resized = resize_tf(background, tf.cast(scaled, tf.int32))
    return resized[offset[0]:offset[0] + height, offset[1]:offset[1] + width]
