"""Size and cost of the networks: FLOPs (TF profiler), frozen inference graphs, CPU forward time.

TensorFlow is imported by the functions that need it, so that `time_calls` can time a
TensorFlow-free path (the LiteRT backend) without TensorFlow's memory in the figures.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    import keras

    from models.shm import SemanticHumanMatting


class FrozenInference:
    """`model(x, training=False)` for inputs of one shape, as a graph whose weights are constants.

    The fastest way TensorFlow runs our networks on CPU: its oneDNN convolutions keep constant
    filters reordered into oneDNN's blocked layout across calls, while variable filters are
    convolved in the plain layout on every call (PSPNet-50's T-Net: 0.98 s frozen, 1.48 s not;
    docs/benchmarks.md, speed study). The graph holds a copy of the weights.
    `input_shape` may leave the batch None. Calling returns the model's outputs (dict or tensor).
    """

    def __init__(self, model: keras.Model, input_shape: tuple[int | None, ...]):
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec(input_shape, tf.float32))
        self._function = convert_variables_to_constants_v2(concrete)
        self._structure = concrete.structured_outputs
        self.graph = self._function.graph

    def __call__(self, x):
        # A frozen function returns a flat list; the outputs come back in tf.nest's order.
        import tensorflow as tf

        return tf.nest.pack_sequence_as(self._structure, self._function(tf.convert_to_tensor(x, tf.float32)))


def count_flops(model: keras.Model, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one inference call (a multiply-add counts 2), as the TF profiler
    counts them on the frozen graph of `model` for inputs of `input_shape`."""
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    with deprecation.silence():  # the v1 profiler warns that it is v1 on every call
        return tf.compat.v1.profiler.profile(graph=FrozenInference(model, input_shape).graph,
                                             options=options).total_float_ops


@dataclasses.dataclass(frozen=True)
class Latency:
    """Wall times in ms of repeated calls: median and 90th percentile."""

    median_ms: float
    p90_ms: float


def time_calls(call: Callable[[], object], repeats: int = 5, warmup: int = 2) -> Latency:
    """Latency of `call()` over `repeats` timed calls after `warmup` untimed ones (which trace graphs,
    plan kernels and fill caches). `call` must block until its result exists (return numpy arrays)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000.0 * (time.perf_counter() - start))
    return Latency(median_ms=statistics.median(times), p90_ms=float(np.percentile(times, 90)))


def forward_latency(model: keras.Model, input_shape: tuple[int, ...], repeats: int = 5, warmup: int = 2) -> Latency:
    """Latency of `repeats` inference calls (`FrozenInference`, as `shm.backends.KerasRunner` runs
    models; random input of `input_shape`) after `warmup` ones."""
    import tensorflow as tf

    inference = FrozenInference(model, input_shape)
    x = tf.constant(np.random.default_rng(0).random(input_shape, dtype=np.float32))
    return time_calls(lambda: tf.nest.map_structure(lambda tensor: tensor.numpy(), inference(x)),
                      repeats=repeats, warmup=warmup)


def preset_parts(preset: str, size: int | None = None) -> tuple[SemanticHumanMatting, dict[str, tuple[keras.Model, tuple]]]:
    """The preset's model at `size` (default: its working size) and its parts with their batch-1
    input shapes: `{"T-Net": (tnet, shape), "M-Net": (mnet, shape), "whole": (model, shape)}`."""
    from models.shm import build_shm, resolve_preset

    settings = resolve_preset(preset)
    size = size or settings["working_size"]
    model = build_shm(preset, input_size=size)
    tnet_size = settings["tnet_size"] or size
    return model, {
        "T-Net": (model.tnet, (1, tnet_size, tnet_size, 3)),
        "M-Net": (model.mnet, (1, size, size, 6)),
        "whole": (model, (1, size, size, 3)),
    }
