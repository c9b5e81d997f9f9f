"""Running on more than one device: `tf.distribute` strategies and mixed precision.

- `default`: one device (the first GPU, else the CPU);
- `mirrored`: synchronous data parallelism over every local GPU (without GPUs, over every logical
  CPU device, which is how the tests exercise it);
- `multiworker`: synchronous data parallelism over several machines, each running the same
  command with its own `TF_CONFIG` (see docs/training.md); worker 0 (or the chief) writes files.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy called `name`; create it before building any model."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy([device.name for device in tf.config.list_logical_devices("CPU")])
    if name == "multiworker":
        config = os.environ.get("TF_CONFIG", "")
        try:
            cluster = json.loads(config)["cluster"] if config else None
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"TF_CONFIG is not a JSON object with a 'cluster' entry: {config!r}") from None
        if not cluster:
            raise ValueError("--strategy multiworker needs TF_CONFIG (cluster and task); see docs/training.md")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes files: always, except for non-chief workers of a multi-worker run."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` spans more than one process (a multi-worker strategy with a real cluster)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    spec = strategy.cluster_resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in spec.jobs if job in ("chief", "worker")) > 1


def set_mixed_precision(enabled: bool) -> None:
    """`mixed_float16` compute (float32 variables; the losses cast to float32) or plain float32."""
    keras.mixed_precision.set_global_policy("mixed_float16" if enabled else "float32")
