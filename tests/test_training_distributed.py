"""Scaling beyond one device, on CPU: mirrored over two logical CPUs, two local workers, mixed precision.

Each distributed case runs in its own process: logical devices and the multi-worker runtime must
be configured before TensorFlow does anything else.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from shm.training import StageTrainer, fit_stage, set_mixed_precision
from training_helpers import dataset, disc_batches, engine_options, tiny_mnet

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "TF_CPP_MIN_LOG_LEVEL": "3"}

TRAIN_TINY_MNET = """
def train(strategy, out_dir):
    import keras
    from shm.training import StageTrainer, fit_stage
    from training_helpers import dataset, disc_batches, engine_options, tiny_mnet
    keras.utils.set_random_seed(3)
    arrays = disc_batches(8, 16)
    trainer = fit_stage(lambda: StageTrainer(tiny_mnet(), "mnet"), dataset(arrays), None,
                        engine_options(out_dir, epochs=2),
                        strategy)
    return [v.numpy() for v in trainer.network.weights]
"""


def _run(script: str, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAIN_TINY_MNET + textwrap.dedent(script)], cwd=ROOT,
                            env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _finish(process: subprocess.Popen, timeout: float = 240) -> str:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


def test_mirrored_over_two_cpus_equals_one_device(tmp_path):
    script = f"""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from shm.training import make_strategy
    strategy = make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    mirrored = train(strategy, r"{tmp_path / 'mirrored'}")
    single = train(None, r"{tmp_path / 'single'}")
    print(max(float(np.max(np.abs(a - b))) for a, b in zip(mirrored, single)))
    """
    difference = float(_finish(_run(script)).strip().splitlines()[-1])
    assert difference < 1e-5  # the same global-batch gradient, split over two replicas
    assert (tmp_path / "mirrored" / "log.csv").exists()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_local_workers_end_with_equal_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    script = f"""
    import os, numpy as np
    from shm.training import make_strategy, is_chief
    strategy = make_strategy("multiworker")
    index = strategy.cluster_resolver.task_id
    weights = train(strategy, r"{tmp_path / 'run'}")
    np.savez(r"{tmp_path}" + f"/worker{{index}}.npz", *weights)
    print("chief" if is_chief(strategy) else "worker", strategy.num_replicas_in_sync)
    """
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(_run(script, env={**ENV, "TF_CONFIG": json.dumps(config)}))
    outputs = [_finish(process).strip().splitlines()[-1] for process in processes]
    assert outputs == ["chief 2", "worker 2"]
    first, second = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    initial = [w.numpy() for w in tiny_mnet().weights]
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    assert any(first[f"arr_{i}"].shape == w.shape and not np.allclose(first[f"arr_{i}"], w)
               for i, w in enumerate(initial))  # they trained, not just started equal
    assert (tmp_path / "run" / "log.csv").exists()  # written by the chief only


def test_multiworker_without_tf_config_is_a_clear_error():
    from shm.training import make_strategy

    environment = os.environ.pop("TF_CONFIG", None)
    try:
        with pytest.raises(ValueError, match="TF_CONFIG"):
            make_strategy("multiworker")
    finally:
        if environment is not None:
            os.environ["TF_CONFIG"] = environment


def test_mixed_precision_trains_with_float32_weights_and_losses(tmp_path):
    set_mixed_precision(True)
    try:
        keras.utils.set_random_seed(0)
        arrays = disc_batches(8, 16)
        trainer = fit_stage(lambda: StageTrainer(tiny_mnet(), "mnet"), dataset(arrays), dataset(arrays),
                            engine_options(tmp_path, epochs=1))
        outputs = trainer({key: value[:2] for key, value in arrays.items()})
        assert keras.backend.standardize_dtype(outputs["alpha_raw"].dtype) == "float16"
        assert all(v.dtype == "float32" for v in trainer.network.trainable_weights)
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
        parts = trainer.loss_parts(arrays, trainer(arrays))
        assert all(keras.backend.standardize_dtype(value.dtype) == "float32" and np.isfinite(float(value)) for value in parts.values())
        assert (tmp_path / "resume.weights.h5").exists()
    finally:
        set_mixed_precision(False)
