"""Which way of running each network is fastest on this CPU, and is it still correct?

Every (network, path) pair runs in its own child process (TensorFlow reads its oneDNN switch once,
at import), with the same seeded random weights and input; its output is compared with the plain
`tf.function` path of the same network. Paths:
- keras-call: `model(x, training=False)` eagerly, op by op; keras-predict: `model.predict(x)`;
- tf-function: one traced graph (`shm.backends.KerasRunner`); tf-function-onednn-off: the same
  with `TF_ENABLE_ONEDNN_OPTS=0` (TensorFlow's own Eigen kernels);
- frozen: the graph with its variables folded into constants, so Grappler folds BatchNorm into
  the convolutions (also -onednn-off); xla: `tf.function(jit_compile=True)`;
- tflite: LiteRT with XNNPACK (`shm.export.write_tflite`); onnx: onnxruntime's CPU provider.
Conversion times are reported apart from the latency. The table replaces the section between
`<!-- speed_study:start -->` and `<!-- speed_study:end -->` of `--output` (atomically).

Examples:
    python benchmarks/speed_study.py                       # every network and path, ~20 min
    python benchmarks/speed_study.py --networks lite/whole --paths tf-function frozen tflite
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from performance import parse_args as performance_args  # noqa: E402
from performance import run_peak_worker, run_worker_process  # noqa: E402
from report import ONEDNN_VARIABLE, load_average, machine_description, tensorflow_environment, write_section  # noqa: E402

START_MARK = "<!-- speed_study:start -->"
END_MARK = "<!-- speed_study:end -->"
NETWORKS = ("pspnet50/T-Net", "pspnet50/M-Net", "lite/whole")
PATHS = ("keras-call", "keras-predict", "tf-function", "tf-function-onednn-off", "frozen", "frozen-onednn-off",
         "xla", "tflite", "onnx")
REFERENCE_PATH = "tf-function"


def build_network(network: str, size: int | None):
    """The network (seeded random weights) and its batch-1 input shape at its working size."""
    import keras

    from models.profiling import preset_parts

    preset, part = network.split("/")
    keras.utils.set_random_seed(0)
    _, parts = preset_parts(preset, size)
    return parts[part]


def main_output(outputs):
    """The output compared across paths: `alpha` of a whole model, else the only output."""
    return outputs["alpha"] if isinstance(outputs, dict) else outputs


def serving_function(network, shape: tuple[int, ...]):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, *shape[1:]), tf.float32, name="x")])
    def serve(x):
        return {"y": main_output(network(x, training=False))}

    return serve


def path_call(path: str, network, shape: tuple[int, ...], x: np.ndarray, scratch: Path):
    """(call returning numpy, conversion seconds) of `network` on `x` along `path`."""
    import tensorflow as tf

    start = time.perf_counter()
    if path == "keras-call":
        call = lambda: np.asarray(main_output(network(x, training=False)))  # noqa: E731
    elif path == "keras-predict":
        call = lambda: np.asarray(main_output(network.predict(x, verbose=0)))  # noqa: E731
    elif path.startswith("tf-function") or path == "xla":
        function = tf.function(lambda images: network(images, training=False), jit_compile=path == "xla")
        call = lambda: np.asarray(main_output(function(x)))  # noqa: E731
    elif path.startswith("frozen"):
        from shm.backends import FrozenInference

        frozen = FrozenInference(network, shape)
        call = lambda: np.asarray(main_output(frozen(x)))  # noqa: E731
    elif path == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        from shm.export import write_tflite

        write_tflite(serving_function(network, shape), scratch / "network.tflite")
        runner = Interpreter(model_path=str(scratch / "network.tflite"), num_threads=os.cpu_count()) \
            .get_signature_runner("serving_default")
        call = lambda: runner(x=x)["y"]  # noqa: E731
    elif path == "onnx":
        import onnxruntime

        from shm.export import write_onnx

        write_onnx(serving_function(network, shape), scratch / "network.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count()
        session = onnxruntime.InferenceSession(str(scratch / "network.onnx"), options,
                                               providers=["CPUExecutionProvider"])
        call = lambda: session.run(["y"], {"x": x})[0]  # noqa: E731
    else:
        raise ValueError(f"unknown path {path!r}")
    return call, time.perf_counter() - start


def measure_path(network_name: str, path: str, size: int | None, repeats: int, warmup: int, reference: Path) -> dict:
    """Worker: latency of one network along one path, and its max |difference| from the reference
    output saved at `reference` (written there when this is the reference path)."""
    from models.profiling import count_flops, time_calls

    network, shape = build_network(network_name, size)
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        call, conversion_seconds = path_call(path, network, shape, x, Path(scratch))
        output = call()
        latency = time_calls(call, repeats=repeats, warmup=warmup)
    if path == REFERENCE_PATH:
        np.save(reference, output)
    difference = float(np.max(np.abs(output - np.load(reference)))) if reference.exists() else None
    return {"network": network_name, "path": path, "input": "x".join(map(str, shape[1:])),
            "onednn": os.environ.get(ONEDNN_VARIABLE, "default"), "median_ms": latency.median_ms,
            "p90_ms": latency.p90_ms, "gflops": count_flops(network, shape) / 1e9,
            "conversion_s": conversion_seconds, "max_difference": difference}


def measure_peak() -> float:
    """The machine's float32 peak in GFLOP/s, as `benchmarks/performance.py --groups peak` measures
    it (large matmul and 3x3 convolutions, oneDNN on and off; the largest figure)."""
    peak_args = performance_args(["--groups", "peak"])
    return max(row["gflop_per_s"] for onednn in (True, False) for row in run_peak_worker(peak_args, onednn)["rows"])


def render(rows: list[dict], peak: float, command: str, load_before, load_after, repeats: int, warmup: int) -> str:
    lines = [START_MARK, "## Speed study: one network, many ways to run it", "",
             f"`{command}`, {datetime.date.today().isoformat()}; {machine_description(load_before, load_after)}.",
             f"Batch 1, median and p90 of {repeats} calls after {warmup} warm-up calls; random weights "
             f"(seeded, the same in every path); difference = max |output - {REFERENCE_PATH} output| "
             "(alpha of a whole model, probabilities of a T-Net, raw alpha of an M-Net). Machine peak measured "
             f"in the same run: {peak:.0f} GFLOP/s (float32, `benchmarks/performance.py`'s peak group).", "",
             "| network | input | path | median (ms) | p90 (ms) | GFLOP/s | % of peak | difference | conversion (s) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['network']} | | {row['path']} | failed: {row['error']} | | | | | |")
            continue
        difference = "" if row["max_difference"] is None else f"{row['max_difference']:.1e}"
        achieved = row["gflops"] * 1000 / row["median_ms"]
        lines.append(f"| {row['network']} | {row['input']} | {row['path']} | {row['median_ms']:.1f} | "
                     f"{row['p90_ms']:.1f} | {achieved:.0f} | {100 * achieved / peak:.0f} % | {difference} | "
                     f"{row['conversion_s']:.1f} |")
    lines.append(END_MARK)
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS),
                        help="preset/part to study (default: all: %(default)s)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS),
                        help=f"ways to run them (default: all; {REFERENCE_PATH} always runs first, as the reference)")
    parser.add_argument("--size", type=int, default=None,
                        help="M-Net / whole-model size instead of each preset's working size (default: working size)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per path (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default: %(default)s)")
    parser.add_argument("--peak", type=float, default=None, metavar="GFLOPS",
                        help="the machine's float32 peak in GFLOP/s for the %% of peak column (default: measured "
                             "first, as benchmarks/performance.py's peak group does)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="page whose speed_study section is replaced (default: docs/benchmarks.md)")
    parser.add_argument("--worker", nargs=3, metavar=("NETWORK", "PATH", "REFERENCE"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        network, path, reference = args.worker
        print(json.dumps(measure_path(network, path, args.size, args.repeats, args.warmup, Path(reference))))
        return 0
    paths = [REFERENCE_PATH] + [path for path in args.paths if path != REFERENCE_PATH]
    load_before, rows = load_average(), []
    peak = args.peak or measure_peak()
    print(f"machine peak: {peak:.0f} GFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        for network in args.networks:
            reference = Path(scratch) / f"{network.replace('/', '_')}.npy"
            for path in paths:
                command = [sys.executable, str(Path(__file__).resolve()), "--worker", network, path, str(reference),
                           "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
                command += ["--size", str(args.size)] if args.size else []
                try:
                    row = run_worker_process(command, f"{network} {path}",
                                             env=tensorflow_environment(onednn=not path.endswith("onednn-off")))
                except RuntimeError as error:
                    row = {"network": network, "path": path, "error": str(error).split(": ", 1)[-1][:120]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    command = "python benchmarks/speed_study.py" + (" " + " ".join(sys.argv[1:] if argv is None else argv)).rstrip()
    write_section(args.output, render(rows, peak, command, load_before, load_average(), args.repeats, args.warmup),
                  START_MARK, END_MARK)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
