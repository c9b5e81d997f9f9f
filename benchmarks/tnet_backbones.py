"""Size, cost and CPU forward time of the light T-Net with each backbone (MobileNetV2, EfficientNet-Lite0).

Parameters, GFLOPs (TF profiler on the frozen graph, a multiply-add counts 2) and the forward time
of one image, frozen TensorFlow graph (as `shm.backends.KerasRunner` runs it) and ONNX Runtime
(a dynamic-size export, as the shipped model runs). The backbones take turns over `--rounds`
rounds so that a busy machine slows both alike; the table gives the median and the best of all
timed calls. The figures in docs/light_tnet.md:

    python benchmarks/tnet_backbones.py --size 256 320 --rounds 15
    python benchmarks/tnet_backbones.py --size 256 320 --rounds 9 --onnx-threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.light_tnet import BACKBONES, SIZE_MULTIPLE  # noqa: E402
from models.profiling import count_flops, time_calls  # noqa: E402
from shm.backends import FrozenInference  # noqa: E402


def onnx_session(model, path: Path, threads: int | None = None):
    """`model` exported to ONNX at `path` with any height and width, on onnxruntime's CPU provider
    with `threads` intra-op threads (default: one per core, as `shm.backends.OnnxRunner`)."""
    import onnxruntime
    import tensorflow as tf

    from shm.export import write_onnx

    spec = tf.TensorSpec((None, None, None, 3), tf.float32, name="image")
    write_onnx(tf.function(lambda image: model(image, training=False), input_signature=[spec]), path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count()
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(backbones: list[str], size: tuple[int, int], rounds: int, repeats: int,
            onnx_threads: int | None = None) -> list[dict]:
    """One row per backbone: params, GFLOPs, and every timed call (ms) per runtime."""
    from models.light_tnet import build_light_tnet

    shape = (1, *size, 3)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    rows, runners = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for backbone in backbones:
            model = build_light_tnet(backbone=backbone)
            frozen = FrozenInference(model, shape)
            session = onnx_session(model, Path(scratch) / f"{backbone}.onnx", onnx_threads)
            input_name = session.get_inputs()[0].name
            runners.append({"frozen": lambda frozen=frozen: frozen(x).numpy(),
                            "onnx": lambda session=session, name=input_name: session.run(None, {name: x})})
            rows.append({"backbone": backbone, "params": model.count_params(),
                         "gflops": count_flops(model, shape) / 1e9, "frozen": [], "onnx": []})
        for _ in range(rounds):
            for row, runner in zip(rows, runners):
                for runtime, call in runner.items():
                    latency = time_calls(call, repeats=repeats, warmup=2)
                    row[runtime].append(latency.median_ms)
    return rows


def table(rows: list[dict], size: tuple[int, int]) -> str:
    lines = [f"| backbone | parameters | GFLOPs at {size[0]}x{size[1]} | frozen TF, median (best) | "
             "ONNX Runtime, median (best) |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        times = {runtime: f"{statistics.median(row[runtime]):.1f} ms ({min(row[runtime]):.1f})"
                 for runtime in ("frozen", "onnx")}
        lines.append(f"| {row['backbone']} | {row['params']:,} | {row['gflops']:.2f} | {times['frozen']} | "
                     f"{times['onnx']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", choices=sorted(BACKBONES), default=sorted(BACKBONES),
                        help="backbones to compare (default: all: %(default)s)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=(256, 320),
                        help="input height and width, multiples of 32 (default: 256 320)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds in which each backbone takes its turn (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per turn, after 2 untimed ones; the turn counts their median "
                             "(default: %(default)s)")
    parser.add_argument("--onnx-threads", type=int, default=None,
                        help="ONNX Runtime intra-op threads (default: one per core, as the shipped runner; "
                             "1 is steadier on a machine busy with other jobs)")
    args = parser.parse_args(argv)
    if any(side <= 0 or side % SIZE_MULTIPLE for side in args.size):
        parser.error(f"--size {args.size[0]} {args.size[1]}: both must be positive multiples of {SIZE_MULTIPLE}")
    rows = measure(args.backbones, tuple(args.size), args.rounds, args.repeats, args.onnx_threads)
    print(f"load average before the table: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(table(rows, tuple(args.size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
