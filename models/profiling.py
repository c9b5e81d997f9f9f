"""Size and cost of the networks: FLOPs (TF profiler) and CPU forward time, both of the frozen graph
(`models.frozen.freeze`) that `shm.backends.KerasRunner` runs.

TensorFlow is imported by the functions that need it, so that `time_calls` can time a
TensorFlow-free path (the LiteRT backend) without TensorFlow's memory in the figures.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from models.frozen import freeze

if TYPE_CHECKING:
    import keras

    from models.shm import SemanticHumanMatting


def count_flops(model: keras.Model, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one inference call (a multiply-add counts 2), as the TF profiler
    counts them on the frozen graph of `model` for inputs of `input_shape`."""
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    with deprecation.silence():  # the v1 profiler warns that it is v1 on every call
        return tf.compat.v1.profiler.profile(graph=freeze(model, input_shape).function.graph,
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
    """Latency of `repeats` inference calls (the frozen graph, `models.frozen.freeze`, as
    `shm.backends.KerasRunner` runs models; random input of `input_shape`) after `warmup` ones."""
    import tensorflow as tf

    function = freeze(model, input_shape).function
    x = tf.constant(np.random.default_rng(0).random(input_shape, dtype=np.float32))
    return time_calls(lambda: [tensor.numpy() for tensor in function(x)], repeats=repeats, warmup=warmup)


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
