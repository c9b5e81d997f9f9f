"""Speed and memory of shm-keras on this machine, in one command: the figures of docs/benchmarks.md.

Groups (`--groups`), each run in its own child process, so that its peak memory is its own (and
TensorFlow's oneDNN switch, read once at import, can differ between them):
- peak: float32 GFLOP/s of a large matmul and large 3x3 convolutions, with TensorFlow's default
  (oneDNN on) and with TF_ENABLE_ONEDNN_OPTS=0; the machine's peak is the largest of them.
- forward: latency (median, p90), throughput, FLOPs, achieved GFLOP/s (% of the peak) and peak
  memory of the T-Net, the M-Net and the whole model of each preset at batch 1 and 4.
- e2e: time per photo from a JPEG on disk to the written outputs (decode, network, upsampling,
  foreground, writing) for a 600x800 and a 4000x3000 (12 MP) photo.
- scaling: `python inference.py --input DIR` on folders of 1, 10 and 100 photos: is time linear in
  the number of photos and memory flat?

The tables replace the section between `<!-- performance:start -->` and `<!-- performance:end -->`
of `--output` (atomically; the rest of the page is kept). The full run should take 6-10 minutes on
2 cores (pspnet50's forward group about half of it); run it on a quiet machine.

Examples:
    python benchmarks/performance.py
    python benchmarks/performance.py --groups peak forward --presets lite --json /tmp/performance.json
    python benchmarks/performance.py --groups scaling --scaling-counts 1 10 --output /tmp/page.md
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.presets import PRESETS  # noqa: E402  (TensorFlow-free)
from report import ONEDNN_VARIABLE, load_average, machine_description, tensorflow_environment, write_section  # noqa: E402
from shm.io import atomic_path  # noqa: E402

START_MARK = "<!-- performance:start -->"
END_MARK = "<!-- performance:end -->"
GROUPS = ("peak", "forward", "e2e", "scaling")
WORKER_GROUPS = ("peak", "forward", "e2e")
BATCHES = (1, 4)
E2E_STAGES = ("decode", "network", "upsampling", "foreground", "writing")
# Verdicts of the scaling group: time is linear when the per-photo times after the first photo
# agree within this fraction; memory is flat when the peak grows by at most this fraction.
LINEAR_TOLERANCE = 0.25
# Memory is judged between the two largest folders: the first photos warm up the allocators and
# onnxruntime's arena (1 -> 100 photos: 162 -> 191 MB; 100 -> 300: 196 -> 197 MB).
FLAT_TOLERANCE = 0.05


def dimensions(text: str) -> tuple[int, ...]:
    """`"600x800"` -> (600, 800): positive integers separated by `x` (an argparse type)."""
    try:
        values = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers joined by x, like 600x800")
    return values


def photo_size(text: str) -> tuple[int, int]:
    values = dimensions(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, like 600x800")
    return values


def conv_shape(text: str) -> tuple[int, int, int]:
    values = dimensions(text)
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HEIGHTxWIDTHxCHANNELS, like 128x128x128")
    return values


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {text}")
    return value


# ---------------------------------------------------------------------------------------------------
# Memory and child processes

def reset_peak_rss() -> None:
    """Restart this process's resident-memory high-water mark (Linux `/proc/self/clear_refs`), so
    that `peak_rss_mb` covers what runs next (elsewhere it keeps covering the process's whole life)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def kib_to_mb(max_rss: int) -> float:
    """`ru_maxrss` in MB (it is KiB on Linux, bytes on macOS)."""
    return max_rss / (2**20 if sys.platform == "darwin" else 2**10)


def peak_rss_mb() -> float:
    return kib_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@dataclasses.dataclass(frozen=True)
class ChildRun:
    """A finished child process: exit code, wall time, peak resident memory, output."""

    exit_code: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str

    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else "no message"


def run_child(command: list[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run `command` in the repository's folder; its peak memory comes from `os.wait4`'s rusage of
    that one child (RUSAGE_CHILDREN would give the largest of all children so far)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return ChildRun(process.returncode, seconds, kib_to_mb(usage.ru_maxrss), out.read(), err.read())


def worker_command(args: argparse.Namespace, group: str, preset: str | None = None) -> list[str]:
    """This script with `--worker GROUP` and the settings that group uses."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", group,
               "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    if preset is not None:
        command += ["--presets", preset]
    if group == "peak":
        command += ["--matmul-size", str(args.matmul_size), "--conv-shapes",
                    *("x".join(map(str, shape)) for shape in args.conv_shapes)]
    if group == "forward" and args.size is not None:
        command += ["--size", str(args.size)]
    if group == "e2e":
        command += ["--photo-sizes", *(f"{width}x{height}" for width, height in args.photo_sizes)]
    return command


def run_peak_worker(args: argparse.Namespace, onednn: bool) -> dict:
    """The peak group's kernels in a child process with TensorFlow's oneDNN on or off."""
    return run_worker_process(worker_command(args, "peak"), "peak", tensorflow_environment(onednn))


def run_worker_process(command: list[str], label: str, env: dict[str, str] | None = None) -> dict:
    """The JSON result a worker prints as its last line, with its whole peak memory added."""
    run = run_child(command, env)
    if run.exit_code != 0:
        raise RuntimeError(f"{label}: worker failed (exit {run.exit_code}): {run.last_error_line()}")
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{label}: worker printed no result")
    result = json.loads(lines[-1])
    result["worker_seconds"] = run.seconds
    result["worker_peak_rss_mb"] = run.peak_rss_mb
    return result


# ---------------------------------------------------------------------------------------------------
# Photos

def astronaut_photo(width: int, height: int) -> np.ndarray:
    """scikit-image's astronaut (ships with it) resized to `width` x `height`, uint8 RGB."""
    return cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_LINEAR)


def photo_variant(photo: np.ndarray, index: int) -> np.ndarray:
    """`photo` shifted sideways and brightened a little by `index`, so that no two files are equal."""
    shifted = np.roll(photo, 7 * index, axis=1).astype(np.float32)
    return np.clip(shifted * (0.9 + 0.02 * (index % 10)), 0, 255).astype(np.uint8)


def write_jpeg(path: Path, photo: np.ndarray) -> Path:
    if not cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"{path}: cannot write the JPEG")
    return path


# ---------------------------------------------------------------------------------------------------
# Workers (child processes): each imports TensorFlow itself, after setting it up

def onnxruntime_kernel(node_type: str, inputs: dict[str, np.ndarray], **attributes):
    """A call of one ONNX operator on `inputs` in onnxruntime (CPU, every core), returning numpy."""
    import onnxruntime
    from onnx import TensorProto, helper

    node = helper.make_node(node_type, list(inputs), ["y"], **attributes)
    graph = helper.make_graph([node], "peak", [helper.make_tensor_value_info(name, TensorProto.FLOAT, value.shape)
                                               for name, value in inputs.items()],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    # The IR version onnxruntime reads (onnx writes its newest by default).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count()
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda: session.run(["y"], inputs)[0]


def constant_kernel_conv(kernel: np.ndarray):
    """A tf.function of a 3x3 SAME convolution whose kernel is a Const node of the graph, as in our
    frozen inference graphs: oneDNN then keeps it reordered into its blocked layout (a captured
    tensor would be a graph input, convolved in the plain layout on every call)."""
    import tensorflow as tf

    @tf.function
    def convolve(x):
        return tf.nn.conv2d(x, tf.constant(kernel), strides=1, padding="SAME")

    return convolve


def measure_peak(matmul_size: int, conv_shapes: list[tuple[int, int, int]], repeats: int, warmup: int) -> dict:
    """GFLOP/s of a `matmul_size`-square float32 matmul and of 3x3 SAME convolutions (batch 1,
    as many output channels as input channels) of `conv_shapes`: in TensorFlow (tf.function),
    and, as other runtimes reach more of the hardware, numpy's BLAS (matmul) and onnxruntime."""
    import tensorflow as tf

    from models.profiling import time_calls

    rng = np.random.default_rng(0)

    def array(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    n = matmul_size
    a, b = array(n, n), array(n, n)
    matmul = tf.function(tf.linalg.matmul)
    a_tensor, b_tensor = tf.constant(a), tf.constant(b)
    cases = [("TensorFlow", "matmul", f"{n}x{n} @ {n}x{n}", 2 * n**3, lambda: matmul(a_tensor, b_tensor).numpy()),
             ("numpy (BLAS)", "matmul", f"{n}x{n} @ {n}x{n}", 2 * n**3, lambda: a @ b),
             ("onnxruntime", "matmul", f"{n}x{n} @ {n}x{n}", 2 * n**3, onnxruntime_kernel("MatMul", {"a": a, "b": b}))]
    for height, width, channels in conv_shapes:
        x, kernel = array(1, height, width, channels), array(3, 3, channels, channels)
        shape, flops = f"1x{height}x{width}x{channels} -> {channels}", 2 * height * width * 9 * channels * channels
        x_tensor = tf.constant(x)
        cases.append(("TensorFlow", "conv 3x3", shape, flops, lambda x=x_tensor, f=constant_kernel_conv(kernel): f(x).numpy()))
        cases.append(("onnxruntime", "conv 3x3", shape, flops, onnxruntime_kernel(
            "Conv", {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2)),
                     "w": np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))}, pads=[1, 1, 1, 1])))
    rows = []
    for runtime, kernel, shape, flops, call in cases:
        latency = time_calls(call, repeats=repeats, warmup=warmup)
        rows.append({"runtime": runtime, "kernel": kernel, "shape": shape, "gflops": flops / 1e9,
                     "median_ms": latency.median_ms, "p90_ms": latency.p90_ms,
                     "gflop_per_s": flops / 1e6 / latency.median_ms})
    return {"onednn": os.environ.get(ONEDNN_VARIABLE, "default"), "rows": rows}


def measure_forward(preset: str, size: int | None, repeats: int, warmup: int) -> dict:
    """Latency, throughput, FLOPs and peak memory of the preset's T-Net, M-Net and whole model at
    batch 1 and 4 (Keras as `shm.backends.KerasRunner` runs it: a frozen graph; random input and,
    for pspnet50, random weights)."""
    from models.profiling import count_flops, forward_latency, preset_parts

    _, parts = preset_parts(preset, size)
    rows = []
    for part, (network, shape) in parts.items():
        for batch in BATCHES:
            reset_peak_rss()
            latency = forward_latency(network, (batch, *shape[1:]), repeats=repeats, warmup=warmup)
            rows.append({"part": part, "input": "x".join(map(str, shape[1:])), "batch": batch,
                         "median_ms": latency.median_ms, "p90_ms": latency.p90_ms,
                         "images_per_s": 1000.0 * batch / latency.median_ms,
                         "peak_rss_mb": peak_rss_mb()})
    # FLOPs last: the profiler's graph is one more copy of the weights, which would inflate the memory figures.
    for part, (network, shape) in parts.items():
        flops = count_flops(network, shape)
        for row in rows:
            if row["part"] == part:
                row["gflops_per_image"] = flops / 1e9
                row["gflop_per_s"] = flops * row["batch"] / 1e6 / row["median_ms"]
    return {"preset": preset, "onednn": os.environ.get(ONEDNN_VARIABLE, "default"), "rows": rows}


def matter_for(preset: str):
    """The preset's default `Matter` (its shipped model on its default backend); pspnet50 ships no
    weights, so a random one of the same cost, run as Keras (a frozen graph)."""
    from shm.inference import Matter

    if PRESETS[preset]["weights"]:
        return Matter.from_preset(preset)
    from models import build_shm

    return Matter(build_shm(preset), working_size=PRESETS[preset]["working_size"])


def measure_e2e(preset: str, photo_sizes: list[tuple[int, int]], repeats: int, warmup: int) -> dict:
    """Time per photo from a JPEG on disk to its written outputs (alpha and RGBA PNGs, what
    `inference.py` writes by default, through the same `matte_image_job`), split into stages."""
    from models.profiling import time_calls
    from shm.jobs import Job, OutputOptions, matte_image_job
    from shm.io import read_image

    matter = matter_for(preset)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        options = OutputOptions(output_dir=Path(folder) / "out", overwrite=True)
        for width, height in photo_sizes:
            photo = write_jpeg(Path(folder) / f"photo_{width}x{height}.jpg", astronaut_photo(width, height))
            samples = []

            def matte_photo() -> None:
                start = time.perf_counter()
                image = read_image(photo)
                decode = time.perf_counter() - start
                job = Job(photo.name, options.output_dir / photo.stem, image=image)
                samples.append({"decode": decode, **dataclasses.asdict(matte_image_job(matter, job, options))})

            reset_peak_rss()
            latency = time_calls(matte_photo, repeats=repeats, warmup=warmup)
            timed = samples[warmup:]
            net_height, net_width = matter.network_size(height, width)
            rows.append({"photo": f"{width}x{height}", "network_size": f"{net_width}x{net_height}",
                         **{f"{stage}_s": statistics.median(sample[stage] for sample in timed)
                            for stage in E2E_STAGES},
                         "total_s": latency.median_ms / 1000, "total_p90_s": latency.p90_ms / 1000,
                         "peak_rss_mb": peak_rss_mb()})
    return {"preset": preset, "backend": matter.runner.backend, "onednn": os.environ.get(ONEDNN_VARIABLE, "default"),
            "rows": rows}


def run_worker(args: argparse.Namespace) -> dict:
    if args.worker == "peak":
        return measure_peak(args.matmul_size, args.conv_shapes, args.repeats, args.warmup)
    if args.worker == "forward":
        return measure_forward(args.presets[0], args.size, args.repeats, args.warmup)
    return measure_e2e(args.presets[0], args.photo_sizes, args.repeats, args.warmup)


# ---------------------------------------------------------------------------------------------------
# Scaling: the real CLI on folders of photos

def measure_scaling(counts: list[int], size: tuple[int, int], folder: Path) -> dict:
    """Wall time and peak memory of `python inference.py --input DIR --output OUT` (a new process,
    default model) on folders of `counts` JPEGs of `size` (width, height) made in `folder`."""
    base = astronaut_photo(*size)
    rows = []
    for count in sorted(set(counts)):
        photos = folder / f"photos_{count}"
        photos.mkdir()
        for index in range(count):
            write_jpeg(photos / f"photo_{index:03d}.jpg", photo_variant(base, index))
        run = run_child([sys.executable, str(ROOT / "inference.py"), "--input", str(photos),
                         "--output", str(folder / f"out_{count}")])
        if run.exit_code != 0:
            raise RuntimeError(f"scaling: inference.py on {count} photos failed (exit {run.exit_code}): "
                               f"{run.last_error_line()}")
        rows.append({"photos": count, "wall_s": run.seconds, "per_photo_s": run.seconds / count,
                     "peak_rss_mb": run.peak_rss_mb})
    first = rows[0]
    for row in rows[1:]:
        row["per_photo_after_first_s"] = (row["wall_s"] - first["wall_s"]) / (row["photos"] - first["photos"])
    return {"photo": "x".join(map(str, size)), "rows": rows, **scaling_verdicts(rows)}


def scaling_verdicts(rows: list[dict]) -> dict:
    """Whether time grows linearly (the per-photo times after the first agree within
    LINEAR_TOLERANCE) and memory stays flat once warm (the largest folder's peak is at most
    FLAT_TOLERANCE above the second largest's); None when there are too few folder sizes to tell."""
    marginal = [row["per_photo_after_first_s"] for row in rows[1:]]
    peaks = [row["peak_rss_mb"] for row in rows]
    linear = None
    if len(marginal) >= 2:
        linear = min(marginal) > 0 and max(marginal) / min(marginal) <= 1 + LINEAR_TOLERANCE
    flat = (peaks[-1] - peaks[-2]) / peaks[-2] <= FLAT_TOLERANCE if len(peaks) >= 2 else None
    return {"linear": linear, "flat": flat}


# ---------------------------------------------------------------------------------------------------
# The page

def onednn_label(value: str) -> str:
    return {"default": "on (default)", "1": "on", "0": "off"}.get(value, value)


def peak_section(runs: list[dict], peak: float) -> list[str]:
    lines = ["### Machine peak (float32)", "",
             "Large kernels on random inputs: TensorFlow (`tf.function`; oneDNN on and off, each in its own "
             "process), numpy's BLAS and onnxruntime (CPU provider, every core; not affected by TensorFlow's "
             "oneDNN switch, so measured in both processes).", "",
             "| runtime | kernel | shape | oneDNN | GFLOP | median (ms) | p90 (ms) | GFLOP/s |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for run in runs:
        lines += [f"| {row['runtime']} | {row['kernel']} | {row['shape']} | "
                  f"{onednn_label(run['onednn']) if row['runtime'] == 'TensorFlow' else 'n/a'} | {row['gflops']:.2f} | "
                  f"{row['median_ms']:.1f} | {row['p90_ms']:.1f} | {row['gflop_per_s']:.1f} |" for row in run["rows"]]
    return lines + ["", f"Peak: **{peak:.1f} GFLOP/s** (the largest above), the reference of \"% of peak\" below."]


def forward_section(results: dict[str, dict], peak: float | None) -> list[str]:
    lines = ["### Forward pass", "",
             "The T-Net, the M-Net and the whole model of each preset at its working size (Keras, "
             "a frozen graph, `models.frozen.freeze`, as `shm.backends.KerasRunner` runs models; "
             "random input); images/s = batch / median. "
             "pspnet50 ships no weights and runs with random ones, which cost the same. GFLOPs per image: "
             "TensorFlow's profiler on the frozen graph at batch 1 (a multiply-add counts 2). Peak RSS: the "
             "process's high-water mark during that measurement (TensorFlow, the whole model's weights and "
             "the activations)." + ("" if peak else " \"% of peak\" needs the peak group in the same run."), "",
             "| preset | oneDNN | part | input | batch | median (ms) | p90 (ms) | images/s | GFLOPs/image | "
             "GFLOP/s | % of peak | peak RSS (MB) |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for preset, result in results.items():
        for row in result["rows"]:
            share = f"{100 * row['gflop_per_s'] / peak:.0f} %" if peak else "-"
            lines.append(f"| {preset} | {onednn_label(result['onednn'])} | {row['part']} | {row['input']} | "
                         f"{row['batch']} | {row['median_ms']:.1f} | {row['p90_ms']:.1f} | "
                         f"{row['images_per_s']:.2f} | {row['gflops_per_image']:.2f} | {row['gflop_per_s']:.1f} | "
                         f"{share} | {row['peak_rss_mb']:.0f} |")
    return lines


def e2e_section(results: dict[str, dict]) -> list[str]:
    lines = ["### End-to-end per photo", "",
             "From a JPEG on disk to the outputs `inference.py` writes by default (alpha and RGBA PNGs), "
             "through its own `shm.jobs.matte_image_job`: decode (`shm.io.read_image`), network "
             "(resize + model), upsampling (guided filter), foreground (colour estimation), writing. "
             "Stage columns are the stages' medians; total is the median (and p90) of the whole. lite runs "
             "`Matter.from_preset(\"lite\")`, pspnet50 `Matter(build_shm(\"pspnet50\"), working_size=512)` "
             "with random weights. Photo: scikit-image's astronaut resized.", "",
             "| preset | backend | photo | network size | decode (s) | network (s) | upsampling (s) | "
             "foreground (s) | writing (s) | total (s) | p90 (s) | peak RSS (MB) |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for preset, result in results.items():
        for row in result["rows"]:
            stages = " | ".join(f"{row[f'{stage}_s']:.3f}" for stage in E2E_STAGES)
            lines.append(f"| {preset} | {result['backend']} | {row['photo']} | {row['network_size']} | {stages} | "
                         f"{row['total_s']:.3f} | {row['total_p90_s']:.3f} | {row['peak_rss_mb']:.0f} |")
    return lines


def scaling_section(result: dict) -> list[str]:
    lines = ["### Many photos", "",
             f"`python inference.py --input DIR --output OUT` (its default: the lite preset) on folders of {result['photo']} "
             "JPEGs (the astronaut shifted and brightened a little per file), each a new process: the wall "
             "time includes start-up (imports, loading the model); \"after the first\" = (wall time - wall "
             "time of the smallest folder) / (extra photos).", "",
             "| photos | wall time (s) | per photo (s) | per photo after the first (s) | peak RSS (MB) |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    for row in result["rows"]:
        after = f"{row['per_photo_after_first_s']:.3f}" if "per_photo_after_first_s" in row else "-"
        lines.append(f"| {row['photos']} | {row['wall_s']:.2f} | {row['per_photo_s']:.3f} | {after} | "
                     f"{row['peak_rss_mb']:.0f} |")
    linear = {True: "yes", False: "no", None: "needs three folder sizes or more"}[result["linear"]]
    flat = {True: "yes", False: "no", None: "needs two folder sizes or more"}[result["flat"]]
    peaks = [row["peak_rss_mb"] for row in result["rows"]]
    return lines + ["", f"Time linear in the number of photos (per-photo times after the first within "
                        f"{LINEAR_TOLERANCE:.0%} of each other): **{linear}**. Memory flat once warm (peak RSS "
                        f"{peaks[-2]:.0f} MB -> {peaks[-1]:.0f} MB between the two largest folders, at most "
                        f"{FLAT_TOLERANCE:.0%} growth): **{flat}**."]


def render_section(results: dict) -> str:
    """The page section of `results` (what `measure` returned), between the markers."""
    lines = [START_MARK, "## Performance", "",
             f"Measured {results['date']} with `{results['command']}` on {results['machine']}. Each group "
             f"ran in its own process, so its memory figures are its own; latencies are the median and "
             f"90th percentile of {results['repeats']} timed calls after {results['warmup']} warm-up calls.", ""]
    if "peak" in results:
        lines += peak_section(results["peak"], results["peak_gflop_per_s"]) + [""]
    if "forward" in results:
        lines += forward_section(results["forward"], results.get("peak_gflop_per_s")) + [""]
    if "e2e" in results:
        lines += e2e_section(results["e2e"]) + [""]
    if "scaling" in results:
        lines += scaling_section(results["scaling"]) + [""]
    return "\n".join(lines).rstrip("\n") + "\n" + END_MARK


# ---------------------------------------------------------------------------------------------------
# The command

def measure(args: argparse.Namespace, command: str) -> tuple[dict, list[str]]:
    """Run the chosen groups, each in child processes; the results and the failures."""
    results = {"command": command, "date": datetime.date.today().isoformat(), "repeats": args.repeats,
               "warmup": args.warmup}
    errors = []
    load_before = load_average()

    def attempt(label: str, run):
        start = time.perf_counter()
        try:
            value = run()
        except RuntimeError as error:
            errors.append(str(error))
            print(f"error: {error}", file=sys.stderr, flush=True)
            return None
        print(f"done: {label} ({time.perf_counter() - start:.0f} s)", flush=True)
        return value

    if "peak" in args.groups:
        runs = []
        for onednn in (True, False):
            run = attempt(f"peak, oneDNN {'on (default)' if onednn else 'off'}",
                          lambda: run_peak_worker(args, onednn))
            if run:
                runs.append(run)
                for row in run["rows"]:
                    print(f"    {row['runtime']} {row['kernel']} {row['shape']}: {row['gflop_per_s']:.1f} GFLOP/s", flush=True)
        if runs:
            results["peak"] = runs
            results["peak_gflop_per_s"] = max(row["gflop_per_s"] for run in runs for row in run["rows"])
    for group in ("forward", "e2e"):
        if group not in args.groups:
            continue
        for preset in args.presets:
            run = attempt(f"{group} {preset}", lambda: run_worker_process(
                worker_command(args, group, preset), f"{group} {preset}"))
            if run:
                results.setdefault(group, {})[preset] = run
                for row in run["rows"]:
                    figure = (f"{row['part']} batch {row['batch']}: {row['median_ms']:.1f} ms"
                              if group == "forward" else f"{row['photo']}: {row['total_s']:.3f} s")
                    print(f"    {figure}", flush=True)
    if "scaling" in args.groups:
        with tempfile.TemporaryDirectory() as folder:
            run = attempt("scaling", lambda: measure_scaling(args.scaling_counts, args.scaling_size, Path(folder)))
        if run:
            results["scaling"] = run
            for row in run["rows"]:
                print(f"    {row['photos']} photos: {row['wall_s']:.1f} s, {row['peak_rss_mb']:.0f} MB", flush=True)
    results["machine"] = machine_description(load_before, load_average())
    return results, errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS),
                        help="measurement groups to run (default: all: peak forward e2e scaling); the page section is "
                             "replaced by the tables of these groups only")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=["lite", "pspnet50"],
                        help="presets of the forward and e2e groups (default: lite pspnet50)")
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="timed calls per measurement; median and p90 are reported (default: %(default)s)")
    parser.add_argument("--warmup", type=non_negative_int, default=2,
                        help="untimed calls before them (tracing, kernel planning, caches) (default: %(default)s)")
    parser.add_argument("--scaling-counts", nargs="+", type=positive_int, default=[1, 10, 100, 300],
                        help="photos per folder in the scaling group, ascending (default: 1 10 100 300: the "
                             "issue's 1, 10, 100, and 300 to show memory flat once warm)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="markdown page whose performance section (between the markers) is replaced, "
                             "or appended when it has none (default: docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also save the raw results as JSON here (default: none)")
    sizes = parser.add_argument_group("sizes (the defaults are the figures' sizes; small ones make quick tests)")
    sizes.add_argument("--matmul-size", type=positive_int, default=4096, metavar="N",
                       help="the peak group's matmul is NxN @ NxN (default: %(default)s)")
    sizes.add_argument("--conv-shapes", nargs="+", type=conv_shape, default=[(128, 128, 128), (60, 60, 512)],
                       metavar="HxWxC", help="the peak group's 3x3 convolutions, batch 1, C channels in and "
                                             "out (default: 128x128x128 60x60x512)")
    sizes.add_argument("--size", type=positive_int, default=None, metavar="PIXELS",
                       help="forward group: M-Net / lite T-Net input size instead of each preset's working "
                            "size (a multiple of 32 for lite, 16 for pspnet50, whose T-Net stays at 473) "
                            "(default: the working size)")
    sizes.add_argument("--photo-sizes", nargs="+", type=photo_size, default=[(600, 800), (4000, 3000)],
                       metavar="WxH", help="e2e group: photo sizes, width x height (default: 600x800 4000x3000)")
    sizes.add_argument("--scaling-size", type=photo_size, default=(600, 800), metavar="WxH",
                       help="scaling group: size of each photo (default: 600x800)")
    parser.add_argument("--worker", choices=WORKER_GROUPS, default=None,
                        help="internal: measure one group (for the first of --presets) in this process and "
                             "print its results as one JSON line; the command starts these itself")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)), flush=True)
        return 0
    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/performance.py", *arguments])
    results, errors = measure(args, command)
    if args.json:
        with atomic_path(args.json) as temporary:
            temporary.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
    if errors:
        print(f"{len(errors)} measurement(s) failed; {args.output} left as it was", file=sys.stderr)
        return 1
    write_section(args.output, render_section(results), START_MARK, END_MARK)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
