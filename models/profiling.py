"""Size and cost of the networks: parameters, FLOPs (TF profiler), CPU forward time."""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
from tensorflow.python.util import deprecation

from models.shm import SemanticHumanMatting, build_shm, resolve_preset


def count_flops(model: keras.Model, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one inference call (a multiply-add counts 2), as the TF profiler
    counts them on the frozen graph of a concrete function of `model` for inputs of `input_shape`."""
    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec(input_shape, tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    with deprecation.silence():  # the v1 profiler warns that it is v1 on every call
        return tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops


def forward_time_ms(model: keras.Model, input_shape: tuple[int, ...], repeats: int = 5, warmup: int = 2) -> float:
    """Median wall time in ms of `repeats` inference calls (a compiled tf.function) after `warmup` ones."""
    function = tf.function(lambda x: model(x, training=False))
    x = tf.constant(np.random.default_rng(0).random(input_shape, dtype=np.float32))

    def run():
        tf.nest.map_structure(lambda tensor: tensor.numpy(), function(x))

    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def preset_parts(preset: str, size: int | None = None) -> tuple[SemanticHumanMatting, dict[str, tuple[keras.Model, tuple]]]:
    """The preset's model at `size` (default: its working size) and its parts with their batch-1
    input shapes: `{"T-Net": (tnet, shape), "M-Net": (mnet, shape), "whole": (model, shape)}`."""
    settings = resolve_preset(preset)
    size = size or settings["working_size"]
    model = build_shm(preset, input_size=size)
    tnet_size = settings["tnet_size"] or size
    return model, {
        "T-Net": (model.tnet, (1, tnet_size, tnet_size, 3)),
        "M-Net": (model.mnet, (1, size, size, 6)),
        "whole": (model, (1, size, size, 3)),
    }
