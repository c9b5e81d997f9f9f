"""Small serializable layers shared by the networks."""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf
from keras import ops

# Momentum of the moving BatchNorm statistics in our networks (PSPNet-50 keeps its own 0.95).
# torchvision's momentum 0.1 is Keras' 0.9. Keras' default 0.99 lags too far behind on short CPU
# trainings: after a few hundred steps the moving variances still held their initial 1.0, and the
# light T-Net in inference mode predicted one class everywhere while training mode was right.
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="shm")
class Normalize(keras.layers.Layer):
    """Per-channel `(x - mean) / std`: each network normalises RGB [0, 1] input inside its graph."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def call(self, inputs):
        mean = ops.convert_to_tensor(self.mean, dtype=inputs.dtype)
        std = ops.convert_to_tensor(self.std, dtype=inputs.dtype)
        return (inputs - mean) / std

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="shm")
class ResizeLike(keras.layers.Layer):
    """Bilinearly resize `inputs[0]` to the spatial size of `inputs[1]` (sizes may be dynamic)."""

    def call(self, inputs):
        source, reference = inputs
        # tf.image.resize, not keras.ops.image.resize: Keras 3.15 checks `size[0] <= 0` in Python,
        # which fails when the size is only known at run time (graphs of dynamic H, W).
        size = tf.shape(reference)[1:3]
        resized = tf.image.resize(source, size, method="bilinear")  # float32 whatever the input
        return resized if resized.dtype == source.dtype else tf.cast(resized, source.dtype)

    def compute_output_shape(self, input_shape):
        source, reference = input_shape
        return (source[0], reference[1], reference[2], source[3])


@keras.saving.register_keras_serializable(package="shm")
class Resize(keras.layers.Layer):
    """Bilinearly resize to a fixed (height, width), e.g. to a T-Net's working size.

    Not `keras.layers.Resizing`: that preprocessing layer defaults to `training=True`, which turns
    on the Dropout of networks after it in the same graph when the model is called without
    `training`.
    """

    def __init__(self, height: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)

    def call(self, inputs):
        return ops.image.resize(inputs, (self.height, self.width), interpolation="bilinear")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
