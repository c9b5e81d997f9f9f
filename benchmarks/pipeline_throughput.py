"""Samples per second of the training pipelines of `shm.data`, and of a light-model train step.

Generates a synthetic data set with `python -m shm.synthetic` (or reads `--data`), times each
pipeline after a warm-up, then times training steps of `models.build_shm("lite")` (Adam, MSE on
alpha) so the pipelines can be compared with what training consumes. Prints a Markdown table: samples
per second of wall time, and per second of the process's CPU time, which other processes on a shared
machine disturb far less (compare those between runs taken at different loads).

Example:
    python benchmarks/pipeline_throughput.py --n 48 --size 640 --batches 15
    python benchmarks/pipeline_throughput.py --data DATA --group-prob 0   # without group views
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shm.console import quiet_tensorflow  # noqa: E402

quiet_tensorflow()  # keep TF's start-up log out of the results
import tensorflow as tf  # noqa: E402

from shm import data  # noqa: E402
from shm.augment import Augmentation  # noqa: E402


class Rate(NamedTuple):
    """Samples per second of wall time, and per second of this process's CPU time (every thread)."""

    wall: float
    cpu: float


def samples_per_second(batches, batch_size: int, warmup: int, count: int) -> Rate:
    """Throughput of an iterable of batches: `count` batches timed after `warmup` untimed ones."""
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        next(iterator)
    samples = count * batch_size
    return Rate(samples / (time.perf_counter() - start), samples / (time.process_time() - start_cpu))


def pipelines(samples, working_size: int, batch_size: int, backgrounds_dir: Path | None,
              augmentation: Augmentation = Augmentation()) -> dict[str, tf.data.Dataset]:
    """The datasets to time, by label; each repeats forever."""
    common = dict(seed=0, backgrounds_dir=backgrounds_dir, augmentation=augmentation)
    return {
        f"T-Net train ({working_size})": data.make_tnet_dataset(samples, working_size, batch_size, **common),
        f"M-Net train ({working_size}, perturbed trimaps)": data.make_mnet_dataset(
            samples, working_size, batch_size, **common),
        f"end-to-end train ({working_size})": data.make_shm_dataset(samples, working_size, batch_size, **common),
        f"end-to-end validation ({working_size})": data.make_shm_dataset(
            samples, working_size, batch_size, training=False),
    }


def lite_train_step_rate(working_size: int, batch_size: int, warmup: int, count: int) -> Rate:
    """Samples/s that training steps of the lite SHM model consume (Adam, MSE on alpha, random data)."""
    import keras

    from models import build_shm

    model = build_shm("lite", input_size=working_size)
    optimizer = keras.optimizers.Adam(1e-4)
    images = tf.random.uniform([batch_size, working_size, working_size, 3])
    alphas = tf.random.uniform([batch_size, working_size, working_size, 1])

    @tf.function
    def step(image, alpha):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(image, training=True)["alpha"] - alpha))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    def steps():
        while True:
            yield step(images, alphas).numpy()

    return samples_per_second(steps(), batch_size, warmup, count)


def run(data_dir: Path | None, n: int, size: int, working_size: int, batch_size: int, warmup: int,
        batches: int, model_steps: int, augmentation: Augmentation = Augmentation()) -> list[tuple[str, Rate]]:
    """Every measurement as (label, rate)."""
    with tempfile.TemporaryDirectory() as scratch:
        if data_dir is None:
            data_dir = Path(scratch) / "synthetic"
            subprocess.run([sys.executable, "-m", "shm.synthetic", "--out", str(data_dir), "--n", str(n),
                            "--size", str(size)], check=True, cwd=Path(__file__).resolve().parent.parent)
        samples = data.discover_samples(data_dir, skip_bad=True)
        print(samples.summary(), file=sys.stderr)
        backgrounds_dir = data_dir / "bg" if (data_dir / "bg").is_dir() else None
        results = []
        for label, dataset in pipelines(samples, working_size, batch_size, backgrounds_dir, augmentation).items():
            rate = samples_per_second(dataset.repeat(), batch_size, warmup, batches)
            print(f"{label}: {rate.wall:.1f} samples/s", file=sys.stderr)
            results.append((label, rate))
    if model_steps:
        rate = lite_train_step_rate(working_size, batch_size, warmup, model_steps)
        print(f"lite train step: {rate.wall:.1f} samples/s", file=sys.stderr)
        results.append((f"lite SHM train step (batch {batch_size}, {working_size}, Adam + MSE)", rate))
    return results


def markdown(results: list[tuple[str, Rate]]) -> str:
    lines = ["| what | samples/s | samples per CPU-second |", "| --- | ---: | ---: |"]
    lines += [f"| {label} | {rate.wall:.1f} | {rate.cpu:.1f} |" for label, rate in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=None,
                        help="data set folder to read (layout of shm.data); default: a synthetic one in a temp dir")
    parser.add_argument("--n", type=int, default=48, help="number of synthetic samples to generate")
    parser.add_argument("--size", type=int, default=640, help="size (pixels) of the synthetic photos")
    parser.add_argument("--working-size", type=int, default=320, help="longer side of every pipeline's views")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size of pipelines and train steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches / steps first")
    parser.add_argument("--batches", type=int, default=15, help="timed batches per pipeline")
    parser.add_argument("--group-prob", type=float, default=Augmentation.group_prob,
                        help="share of group views (shm.augment.Augmentation.group_prob)")
    parser.add_argument("--model-steps", type=int, default=5,
                        help="timed train steps of the lite model (0: do not time the model)")
    args = parser.parse_args(argv)
    results = run(args.data, args.n, args.size, args.working_size, args.batch_size, args.warmup, args.batches,
                  args.model_steps, Augmentation(group_prob=args.group_prob))
    print(markdown(results))
    if args.model_steps:
        model_rate = results[-1][1].wall
        end_to_end = next(rate.wall for label, rate in results if label.startswith("end-to-end train"))
        print(f"\nend-to-end pipeline / lite train step = {end_to_end / model_rate:.1f}x")


if __name__ == "__main__":
    main()
