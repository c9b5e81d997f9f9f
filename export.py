"""Export a trained SHM model (image -> alpha and trimap) to Keras, SavedModel, TFLite or ONNX.

Examples:
    python export.py --weights weights/shm_lite.keras --format onnx --output exports/shm_lite.onnx
    python export.py --weights weights/shm_lite.keras --format tflite --quantize float16 \\
        --output exports/shm_lite_fp16.tflite --benchmark
    python export.py --weights weights/shm_lite.keras --format savedmodel --input-size 320 480 \\
        --output exports/shm_lite_savedmodel
    python export.py --weights weights/shm_lite.keras --format onnx --dynamic-size \
        --output weights/shm_lite.onnx        # the shipped default model of inference.py

Each export is loaded back and compared with the Keras model on the same random images before it
is put in place; a float32 export whose alpha differs by 1e-3 or more is refused. See docs/export.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from shm.backends import thread_count
    from shm.export import FORMATS  # light: shm.export imports TensorFlow only when exporting

    # Defaults are spelled out in each help text: ArgumentDefaultsHelpFormatter would add "(default: None)".
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, metavar="FILE",
                        help="the whole SHM model to export, a .keras file, or with --preset a "
                             "combined_model.py checkpoint (*.weights.h5); never modified")
    parser.add_argument("--preset", default=None,
                        help="the preset whose model a *.weights.h5 checkpoint belongs to, e.g. lite "
                             "(default: none; not needed for .keras files)")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="keras: an inference-only .keras copy (no optimizer state, the model's own "
                             "input size); savedmodel: a TensorFlow SavedModel directory; tflite: a "
                             "LiteRT flatbuffer; onnx: an ONNX graph for onnxruntime")
    parser.add_argument("--quantize", choices=("float16", "dynamic"), default=None,
                        help="tflite / onnx only: float16 weights, or dynamic-range int8 weights; the "
                             "difference from the Keras alpha is reported instead of enforced "
                             "(default: float32, checked to < 1e-3)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="fixed image size of savedmodel / tflite / onnx graphs, multiples of the "
                             "preset's size multiple (default: the model's own fixed size, else its "
                             "preset's working size, 320x320 for lite); the batch stays dynamic")
    parser.add_argument("--dynamic-size", action="store_true",
                        help="savedmodel / tflite / onnx graphs that take any image size (multiples of the "
                             "preset's size multiple), checked at --input-size (or the default size) and a "
                             "second shape; how weights/shm_lite.onnx is made (default: fixed size)")
    parser.add_argument("--output", required=True, metavar="PATH",
                        help="where to write the export (.keras / .tflite / .onnx file, or a directory "
                             "for savedmodel), atomically; an existing one is kept unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output (default: refuse before any work)")
    parser.add_argument("--threads", type=thread_count, default=None, metavar="N",
                        help="threads of the TFLite / ONNX runtime for the check and the benchmark "
                             "(default: every core)")
    parser.add_argument("--benchmark", action="store_true",
                        help="also time the export: batch 1, median of 5 calls after 2 warm-up calls (default: off)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only errors (on stderr) and the --benchmark line: no progress or notes, no "
                             "report of the export (default: what is exported, then its path, size and "
                             "difference from the Keras model)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from shm.backends import load_backend
    from shm.console import quiet_tensorflow, report
    from shm.export import benchmark, export_model
    from shm.io import stop_on_sigterm_like_sigint, sweep_stale_temporaries

    quiet_tensorflow()  # its start-up lines would bury the report
    stop_on_sigterm_like_sigint()
    for path in sweep_stale_temporaries(Path(args.output).parent):
        report(f"note: removed {path}, a temporary of an interrupted export", args.quiet)
    report(f"exporting {args.weights} as {args.format} ({args.quantize or 'float32'}) ...", args.quiet)
    try:
        result = export_model(args.weights, args.format, args.output, quantize=args.quantize, preset=args.preset,
                              input_size=args.input_size, num_threads=args.threads,
                              dynamic_size=args.dynamic_size, overwrite=args.overwrite)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report(result.describe(), args.quiet)
    if args.benchmark:
        runner = load_backend(result.path, args.format, num_threads=args.threads, trust_savedmodel=True)
        size = result.input_size
        seconds = benchmark(runner, size)
        print(f"benchmark: {args.format} ({args.quantize or 'float32'}) at {size[0]}x{size[1]}, batch 1: "
              f"median {seconds * 1000:.1f} ms of 5 calls after 2 warm-up calls, "
              f"{result.size_bytes / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
