"""Alpha mattes of people in photos, folders, videos or a webcam, with a trained SHM model.

Examples:
    python inference.py --demo --output out/                      # scikit-image's astronaut
    python inference.py --input photo.jpg --output cutout.png      # one file: the RGBA cut-out
    python inference.py --input photo.jpg --output mask.png --only-alpha
    python inference.py --input - --output - < photo.jpg > cutout.png
    python inference.py --input photos/ --output out/ --background lime --save-trimap
    python inference.py --input clip.mp4 --output out/ --outputs rgba,composite,alpha --background beach.jpg
    python inference.py --input frames/ --sequence-fps 30 --output out/ --outputs rgba
    python inference.py --input photos/ --output out/ --weights runs/shm/best.weights.h5 --preset lite
    python inference.py --camera 0 --weights weights/shm_lite.keras

Every photo NAME gives NAME_alpha.png (8-bit alpha, original size) and NAME_rgba.png (cut-out with
estimated foreground colours); a video gives NAME_alpha.mp4 and NAME_composite.mp4 (H.264 with the
input's audio), and on request NAME_rgba.webm (VP9 with alpha), NAME_foreground.mp4 and
NAME_frames/ (RGBA PNGs). See docs/inference.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

# A single input written to one file: the output's suffix says it is a file, not a folder.
SINGLE_OUTPUT_SUFFIXES = (".png", ".mp4", ".webm")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from shm.backends import BACKENDS, thread_count  # light: no TensorFlow
    from shm.outputs import OUTPUT_KINDS
    from shm.io import DEFAULT_MAX_PIXELS
    from shm.upsampling import DEFAULT_CLAMP, clamp_margin

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="PATH",
                        help="a photo, a video file or a folder of them, or - for one photo on standard "
                             "input; in a folder, files that are neither images nor videos are ignored "
                             "(counted in the summary)")
    source.add_argument("--camera", type=int, metavar="N",
                        help="webcam number N with a live preview window (needs a display and a GUI "
                             "build of OpenCV); q or Esc quits")
    source.add_argument("--demo", action="store_true",
                        help="matte scikit-image's astronaut photo (ships with scikit-image)")
    parser.add_argument("--output", metavar="DIR|FILE", default="out",
                        help="folder for the outputs, created if missing; for a single input, a file "
                             "(.png for a photo, .mp4 / .webm for a video) or - (standard output, PNG) "
                             "holds its one output: the cut-out (rgba) by default (default: out)")
    parser.add_argument("--outputs", metavar="KIND[,KIND]", default=None,
                        help=f"which outputs to write, of {', '.join(OUTPUT_KINDS)}; photos take alpha, "
                             "rgba, composite, foreground, trimap (PNG); videos alpha, composite, "
                             "foreground (H.264 .mp4), rgba (VP9 .webm with alpha) and frames (a folder "
                             "of RGBA PNGs) (default: photos alpha,rgba plus composite with --background "
                             "and trimap with --save-trimap; videos alpha,composite; a single output "
                             "file rgba, or composite with --background)")
    parser.add_argument("--only-alpha", action="store_true",
                        help="write only the alpha matte, skipping the foreground colours and the cut-out "
                             "(by docs/benchmarks.md's stage times about half the time of a 600x800 photo, "
                             "two thirds of a 12 MP one); the same as --outputs alpha")
    parser.add_argument("--recursive", action="store_true", help="also matte the input folder's subfolders "
                        "(the output keeps the subfolders)")
    parser.add_argument("--sequence-fps", type=float, default=None, metavar="FPS",
                        help="the --input folder's images (sorted by name) are the frames of one video at "
                             "FPS frames per second: write video outputs named after the folder "
                             "(default: each image is a photo of its own)")
    parser.add_argument("--weights", metavar="PATH", default=None,
                        help="a whole SHM model saved as .keras, an export of export.py (.tflite, "
                             ".onnx, SavedModel directory with --trust-savedmodel), or a training "
                             "checkpoint *.weights.h5 of --preset's model (default: the preset's shipped "
                             "model for --backend: weights/shm_lite.onnx for lite, weights/shm_lite.keras "
                             "with --backend keras)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="what runs the network; must match the --weights file's format, which it "
                             "is inferred from when omitted (default: the preset's fastest, onnx "
                             "(onnxruntime, no TensorFlow import) for lite's shipped model; keras "
                             "for .keras and .weights.h5 files, tflite for .tflite, onnx for .onnx, "
                             "savedmodel for a SavedModel directory). Fixed-size exports run at their "
                             "size (the photo is fitted into it with its aspect ratio, padded, and "
                             "--working-size is ignored)")
    parser.add_argument("--trust-savedmodel", action="store_true",
                        help="allow a SavedModel directory as --weights: its graph can read and write files, "
                             "so only for models you made or trust (default: refused; .onnx, .tflite and "
                             ".keras files cannot do that, see docs/inference.md)")
    parser.add_argument("--threads", type=thread_count, default=None, metavar="N",
                        help="threads of the TFLite / ONNX runtime (default: every core); keras and "
                             "savedmodel use TensorFlow's settings")
    parser.add_argument("--preset", default="lite",
                        help="model preset: its default weights and its working size, see models/presets.py; "
                             "also the model a *.weights.h5 checkpoint is loaded into (default: lite)")
    parser.add_argument("--working-size", type=int, default=None, metavar="PIXELS",
                        help="longer side the network runs at, for models of dynamic size (default: "
                             "the preset's); models of fixed size always run at their size")
    parser.add_argument("--clamp", type=clamp_margin, default=DEFAULT_CLAMP, metavar="MARGIN",
                        help="alphas within MARGIN of 0 or 1 become 0 or 1 and the rest is stretched between: "
                             "no faint haze over the background (0 keeps the network's alpha; default: %(default)s)")
    parser.add_argument("--background", metavar="COLOR|IMAGE", default=None,
                        help="the background of composites: a colour (a CSS name like lime, #00ff00 or "
                             "r,g,b) or an image; with it photos also get NAME_composite.png "
                             "(default: none; video composites use #00ff00)")
    parser.add_argument("--save-trimap", action="store_true",
                        help="also write the predicted trimap NAME_trimap.png (0/128/255)")
    parser.add_argument("--max-pixels", type=float, default=None, metavar="MP",
                        help="largest photo to matte, in megapixels; larger ones fail with one line before "
                             "they are decoded (memory: about 30 bytes per pixel) "
                             f"(default: {DEFAULT_MAX_PIXELS / 1e6:g})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (by default they are kept and the file is skipped)")
    parser.add_argument("--timings", action="store_true",
                        help="print (on stderr) the time of every image split into network, upsampling, "
                             "foreground, writing")
    parser.add_argument("--quiet", action="store_true",
                        help="print only errors (on stderr): no progress bar, no summary (default: a "
                             "progress bar on a terminal, and a summary line)")
    args = parser.parse_args(argv)
    if args.only_alpha and args.outputs:
        parser.error("--only-alpha and --outputs exclude each other (--only-alpha is --outputs alpha)")
    return args


def single_output(args: argparse.Namespace) -> bool:
    """A single input whose --output is a file (by its suffix) or standard output."""
    if args.output == "-":
        return True
    single_input = args.demo or args.input == "-" or (args.input is not None and Path(args.input).is_file())
    return single_input and args.sequence_fps is None and Path(args.output).suffix.lower() in SINGLE_OUTPUT_SUFFIXES


def output_kinds(args: argparse.Namespace) -> tuple[str, ...] | None:
    """--outputs / --only-alpha, or the default of a single output file; None: the defaults per medium."""
    if args.only_alpha:
        return ("alpha",)
    if args.outputs:
        return tuple(kind.strip() for kind in args.outputs.split(",") if kind.strip())
    if single_output(args):
        suffix = Path(args.output).suffix.lower()
        if suffix in (".webm", ".mp4"):
            return ("rgba",) if suffix == ".webm" else ("composite",)
        return ("rgba",) if args.background is None else ("composite",)
    return None


def collect(args: argparse.Namespace, output_dir: Path):
    """The jobs of --demo, --input - or --input PATH, and the ignored files."""
    from shm.jobs import Job, collect_jobs
    from shm.io import decode_image

    if args.demo:
        try:
            from skimage import data
        except ImportError:
            raise ValueError("--demo matte scikit-image's astronaut: install scikit-image "
                             "(pip install \"shm-keras[train]\", or -r requirements.txt)") from None
        jobs, ignored = [Job("astronaut", output_dir / "astronaut", image=data.astronaut())], []
    elif args.input == "-":
        image = decode_image(sys.stdin.buffer.read(), "<stdin>")
        jobs, ignored = [Job("<stdin>", output_dir / "stdin", image=image)], []
    else:
        jobs, ignored = collect_jobs(args.input, output_dir, recursive=args.recursive, frame_rate=args.sequence_fps)
    if single_output(args):
        if len(jobs) != 1:
            raise ValueError(f"--output {args.output}: one output file takes one input, not the {len(jobs)} "
                             f"of {args.input}; give a folder as --output")
        jobs = [dataclasses.replace(job, output_file=Path(args.output)) for job in jobs]
    return jobs, ignored


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from shm.batch import INTERRUPTED_STATUS
    from shm.io import check_output_dir, set_max_pixels, stop_on_sigterm_like_sigint, sweep_stale_temporaries

    stop_on_sigterm_like_sigint()
    if args.max_pixels is not None:
        if args.max_pixels <= 0:
            print(f"error: --max-pixels must be positive, got {args.max_pixels:g}", file=sys.stderr)
            return 2
        set_max_pixels(round(args.max_pixels * 1e6))
    from shm.camera import display_problem, run_camera
    from shm.inference import Matter
    from shm.jobs import OutputOptions, check_output_settings, matte_jobs, output_paths, renamed_outputs
    from shm.outputs import parse_background

    # With the output on standard output, people's lines go to stderr.
    say = sys.stderr if args.output == "-" else sys.stdout
    try:
        background = parse_background(args.background) if args.background else None
        problem = display_problem() if args.camera is not None else None
        if problem:
            raise RuntimeError(problem)
        output_dir = Path(args.output).parent if single_output(args) else Path(args.output)
        jobs, ignored = collect(args, output_dir) if args.camera is None else ([], [])
        options = OutputOptions(output_dir, background=background, save_trimap=args.save_trimap,
                                overwrite=args.overwrite, print_timings=args.timings, kinds=output_kinds(args),
                                quiet=args.quiet)
        if single_output(args):
            output_paths(jobs[0], options)  # a name that does not fit the output: refused before any work
        matter = Matter.from_preset(args.preset, weights=args.weights, working_size=args.working_size,
                                    backend=args.backend, num_threads=args.threads,
                                    trust_savedmodel=args.trust_savedmodel, clamp=args.clamp)
        if args.camera is None and args.output != "-":
            check_output_dir(output_dir)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted before any work", file=sys.stderr)
        return INTERRUPTED_STATUS

    if args.camera is not None:
        try:
            frames = run_camera(matter, args.camera, background)
        except (OSError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"camera {args.camera}: {frames} frames shown")
        return 0

    notes = []
    if not single_output(args):  # a folder of outputs: its leftovers and its settings record
        notes += [f"removed {path}, a temporary file of an interrupted run"
                  for path in sweep_stale_temporaries(output_dir, recursive=args.recursive)]
        try:
            unrecorded = check_output_settings(matter, jobs, options)
        except (ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        notes += renamed_outputs(jobs) + ([unrecorded] if unrecorded else [])
    for line in notes:
        if not args.quiet:
            print(f"note: {line}", file=say)
    start = time.perf_counter()
    summary = matte_jobs(matter, jobs, options)
    summary.ignored = len(ignored)
    where = "standard output" if args.output == "-" else args.output
    if not args.quiet or summary.interrupted:
        print(f"{summary.line()}; {time.perf_counter() - start:.1f} s in all; outputs in {where}", file=say)
    if summary.interrupted:
        return INTERRUPTED_STATUS
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
