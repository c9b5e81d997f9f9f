"""A Keras model as a TensorFlow function whose weights are constants (a frozen graph).

The one freezing of the project: `shm.backends.FrozenInference` runs models this way (the fastest
TensorFlow path on CPU) and `models.profiling` counts and times the same graph. TensorFlow is
imported when a model is frozen, so that importing this module stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


class FrozenFunction(NamedTuple):
    """`function(x)` returns the model's outputs as a flat list, in `tf.nest`'s order of `outputs`
    (the structure of the model's outputs: a dict or a tensor); `function.graph` is the graph."""

    function: "tf.types.experimental.ConcreteFunction"
    outputs: Any


def freeze(model: "keras.Model", input_shape: tuple[int | None, ...]) -> FrozenFunction:
    """`model(x, training=False)` for float32 inputs of `input_shape` (the batch may be None), its
    weights copied into the graph as constants.

    Why frozen: TensorFlow's oneDNN convolutions keep constant filters reordered into oneDNN's
    blocked layout across calls, while variable filters are convolved in the plain layout on every
    call (PSPNet-50's T-Net: 0.98 s frozen, 1.48 s not; docs/benchmarks.md, speed study).
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(input_shape, tf.float32))
    return FrozenFunction(convert_variables_to_constants_v2(concrete), concrete.structured_outputs)
