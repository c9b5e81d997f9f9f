"""Alpha mattes of people in photos, folders, videos or a webcam, with a trained SHM model.

Examples:
    python inference.py --demo --output out/                      # scikit-image's astronaut
    python inference.py --input photos/ --output out/ --background lime --save-trimap
    python inference.py --input clip.mp4 --output out/ --background beach.jpg
    python inference.py --camera 0 --weights weights/shm_lite.keras
    python inference.py --input photos/ --output out/ --weights exports/shm_lite.onnx --threads 2

Every photo NAME gives NAME_alpha.png (8-bit alpha, original size) and NAME_rgba.png (cut-out with
estimated foreground colours); a video gives NAME_alpha.mp4 and NAME_composite.mp4. See
docs/inference.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's start-up chatter would bury the summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from shm.backends import BACKENDS, thread_count  # light: no TensorFlow
    from shm.io import DEFAULT_MAX_PIXELS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="PATH",
                        help="a photo, a video file or a folder of them; in a folder, files that are "
                             "neither images nor videos are ignored (counted in the summary)")
    source.add_argument("--camera", type=int, metavar="N",
                        help="webcam number N with a live preview window (needs a display and a GUI "
                             "build of OpenCV); q or Esc quits")
    source.add_argument("--demo", action="store_true",
                        help="matte scikit-image's astronaut photo (ships with scikit-image)")
    parser.add_argument("--output", metavar="DIR", default="out",
                        help="folder for the outputs, created if missing (default: out)")
    parser.add_argument("--recursive", action="store_true", help="also matte the input folder's subfolders "
                        "(the output keeps the subfolders)")
    parser.add_argument("--weights", metavar="PATH", default=None,
                        help="a whole SHM model saved as .keras, or an export of export.py (.tflite, "
                             ".onnx, SavedModel directory with --trust-savedmodel) (default: the preset's "
                             "shipped model for --backend: weights/shm_lite.onnx for lite, "
                             "weights/shm_lite.keras with --backend keras)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="what runs the network; must match the --weights file's format, which it "
                             "is inferred from when omitted (default: the preset's fastest, onnx "
                             "(onnxruntime, no TensorFlow import) for lite's shipped model; keras "
                             "for .keras files, tflite for .tflite, onnx for .onnx, savedmodel for a "
                             "SavedModel directory). Fixed-size exports run at their size (the photo is "
                             "fitted into it with its aspect ratio, padded, and --working-size is ignored)")
    parser.add_argument("--trust-savedmodel", action="store_true",
                        help="allow a SavedModel directory as --weights: its graph can read and write files, "
                             "so only for models you made or trust (default: refused; .onnx, .tflite and "
                             ".keras files cannot do that, see docs/inference.md)")
    parser.add_argument("--threads", type=thread_count, default=None, metavar="N",
                        help="threads of the TFLite / ONNX runtime (default: every core); keras and "
                             "savedmodel use TensorFlow's settings")
    parser.add_argument("--preset", default="lite",
                        help="model preset: its default weights and its working size, see models/presets.py "
                             "(default: lite)")
    parser.add_argument("--working-size", type=int, default=None, metavar="PIXELS",
                        help="longer side the network runs at, for models of dynamic size (default: "
                             "the preset's); models of fixed size always run at their size")
    parser.add_argument("--background", metavar="COLOR|IMAGE", default=None,
                        help="also write NAME_composite.png onto this colour (a CSS name like lime, "
                             "#00ff00 or r,g,b) or image; videos default to #00ff00")
    parser.add_argument("--save-trimap", action="store_true",
                        help="also write the predicted trimap NAME_trimap.png (0/128/255)")
    parser.add_argument("--max-pixels", type=float, default=None, metavar="MP",
                        help="largest photo to matte, in megapixels; larger ones fail with one line before "
                             "they are decoded (memory: about 30 bytes per pixel) "
                             f"(default: {DEFAULT_MAX_PIXELS / 1e6:g})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (by default they are kept and the file is skipped)")
    parser.add_argument("--timings", action="store_true",
                        help="print the time of every image split into network, upsampling, foreground, writing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from shm.io import check_output_dir, set_max_pixels, stop_on_sigterm_like_sigint, sweep_stale_temporaries

    stop_on_sigterm_like_sigint()
    if args.max_pixels is not None:
        if args.max_pixels <= 0:
            print(f"error: --max-pixels must be positive, got {args.max_pixels:g}", file=sys.stderr)
            return 2
        set_max_pixels(round(args.max_pixels * 1e6))
    from shm.inference import (Job, Matter, OutputOptions, check_output_settings, collect_jobs,
                               display_problem, matte_jobs, parse_background, renamed_outputs, run_camera)

    try:
        background = parse_background(args.background) if args.background else None
        problem = display_problem() if args.camera is not None else None
        if problem:
            raise RuntimeError(problem)
        if args.demo:
            from skimage import data
            jobs, ignored = [Job("astronaut", Path(args.output) / "astronaut", image=data.astronaut())], []
        elif args.input is not None:
            jobs, ignored = collect_jobs(args.input, args.output, recursive=args.recursive)
        matter = Matter.from_preset(args.preset, weights=args.weights, working_size=args.working_size,
                                    backend=args.backend, num_threads=args.threads,
                                    trust_savedmodel=args.trust_savedmodel)
        output_dir = check_output_dir(args.output) if args.camera is None else None
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if args.camera is not None:
        try:
            frames = run_camera(matter, args.camera, background)
        except (OSError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"camera {args.camera}: {frames} frames shown")
        return 0

    for path in sweep_stale_temporaries(output_dir, recursive=args.recursive):
        print(f"note: removed {path}, a temporary file of an interrupted run")
    options = OutputOptions(output_dir, background=background, save_trimap=args.save_trimap,
                            overwrite=args.overwrite, print_timings=args.timings)
    try:
        unrecorded = check_output_settings(matter, jobs, options)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    notes = renamed_outputs(jobs) + ([unrecorded] if unrecorded else [])
    for line in notes:
        print(f"note: {line}")
    start = time.perf_counter()
    summary = matte_jobs(matter, jobs, options)
    summary.ignored = len(ignored)
    print(f"{summary.line()}; {time.perf_counter() - start:.1f} s in all; outputs in {output_dir}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
