"""Alpha mattes of many photos on Apache Beam: inference.py's outputs, on one machine or a cluster.

Examples:
    python matte_beam.py --input photos/ --output out/                  # DirectRunner, one process
    python matte_beam.py --input 'photos/**' --output out/ --direct_num_workers 2 --direct_running_mode multi_processing
    python matte_beam.py --input-list photos.txt --output out/ --background lime --save-trimap
    python matte_beam.py --input 'gs://BUCKET/photos/**' --output gs://BUCKET/mattes --weights gs://BUCKET/shm_lite.onnx \\
        --runner DataflowRunner --project PROJECT --region REGION --temp_location gs://BUCKET/tmp --setup_file ./setup.py

Every photo NAME gives NAME_alpha.png and NAME_rgba.png (and NAME_composite.png, NAME_trimap.png
if asked), named, valued and skipped exactly as by inference.py; a photo that cannot be read or
matted is a line of OUTPUT/failures.jsonl. Options this command does not know are Beam's pipeline
options (--runner, --direct_num_workers, Dataflow's, Flink's, Spark's). See docs/beam.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shm.backends import BACKENDS, thread_count  # light: no TensorFlow, no Beam
from shm.io import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS
from shm.upsampling import DEFAULT_CLAMP, clamp_margin


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """This command's arguments, and the rest: Beam's pipeline options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Any other option is one of Beam's pipeline options, passed through: --runner (default "
               "DirectRunner), --direct_num_workers N (default 1; 0: one per core) and --direct_running_mode "
               "in_memory|multi_threading|multi_processing (default in_memory) for the DirectRunner; "
               "--project, --region, --temp_location, --setup_file, --num_workers, ... for Dataflow; "
               "--flink_master / --spark_master_url for Flink / Spark (docs/beam.md).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="PATTERN|FOLDER",
                        help="the photos: a file pattern on any Beam filesystem (photos/*.jpg, 'photos/**' "
                             "with subfolders, gs://BUCKET/photos/**; quote it from the shell) or a local "
                             "folder (its files, as inference.py --input FOLDER); outputs keep the path under "
                             "the pattern's folder; files that are not images are ignored (counted)")
    source.add_argument("--input-list", metavar="FILE",
                        help="a text file on any Beam filesystem naming one photo a line, relative to the "
                             "file's folder (outputs keep that path) or absolute / a URL (outputs named by "
                             "the file name); empty lines and # comments are skipped")
    parser.add_argument("--output", metavar="DIR", default="out",
                        help="folder for the outputs and failures.jsonl, on any Beam filesystem, created if "
                             "missing (default: out)")
    parser.add_argument("--recursive", action="store_true",
                        help="with a folder --input: its subfolders too (the outputs keep them)")
    parser.add_argument("--weights", metavar="PATH", default=None,
                        help="a model file as for inference.py (.onnx, .tflite, .keras, SavedModel directory "
                             "with --trust-savedmodel), on any Beam filesystem (remote files are copied once per "
                             "worker) (default: the preset's shipped model for --backend, weights/shm_lite.onnx "
                             "for lite)")
    parser.add_argument("--trust-savedmodel", action="store_true",
                        help="allow a SavedModel directory as --weights, as for inference.py (its graph can read "
                             "and write files: only for models you made or trust) (default: refused)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="what runs the network, as for inference.py (default: the one the --weights "
                             "file's format needs; onnx for lite's shipped model, without TensorFlow)")
    parser.add_argument("--preset", default="lite",
                        help="model preset: its default weights and working size (default: lite)")
    parser.add_argument("--working-size", type=int, default=None, metavar="PIXELS",
                        help="longer side the network runs at, for models of dynamic size (default: the preset's)")
    parser.add_argument("--clamp", type=clamp_margin, default=DEFAULT_CLAMP, metavar="MARGIN",
                        help="alphas within MARGIN of 0 or 1 become 0 or 1 and the rest is stretched between: "
                             "no faint haze over the background (0 keeps the network's alpha; default: %(default)s)")
    parser.add_argument("--threads", type=thread_count, default=None, metavar="N",
                        help="threads of the ONNX / TFLite runtime per worker process (default: fit the "
                             "worker: its cores divided by --direct_num_workers on the DirectRunner, by "
                             "--sdk_worker_parallelism on Flink / Spark; 1 on Dataflow, which starts a "
                             "process per vCPU)")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N",
                        help="the most photos per network call; photos of one network size share a call "
                             "(default: 1: on a CPU a batch costs more per photo, docs/benchmarks.md; "
                             "raise it for a GPU runtime)")
    parser.add_argument("--background", metavar="COLOR|IMAGE", default=None,
                        help="also write NAME_composite.png onto this colour (lime, #00ff00, r,g,b) or local image")
    parser.add_argument("--save-trimap", action="store_true",
                        help="also write the predicted trimap NAME_trimap.png (0/128/255)")
    parser.add_argument("--max-pixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="MP",
                        help="largest photo to matte, in megapixels, as for inference.py; larger ones are "
                             f"failures, refused before they are decoded (default: {DEFAULT_MAX_PIXELS / 1e6:g})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (by default a photo whose outputs all exist is skipped, "
                             "so a rerun after a crash does only what is missing)")
    args, beam_args = parser.parse_known_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_pixels <= 0:
        parser.error(f"--max-pixels must be positive, got {args.max_pixels:g}")
    photos = [arg for arg in beam_args if Path(arg).suffix.lower() in IMAGE_EXTENSIONS and Path(arg).is_file()]
    if photos:  # Beam would drop them with a warning, and only --input's first photo would be matted
        parser.error(f"{photos[0]}: a photo among the options: quote --input's pattern so that the shell "
                     "does not expand it (--input 'photos/*.jpg')")
    return args, beam_args


def main(argv: list[str] | None = None) -> int:
    args, beam_args = parse_args(argv)
    from shm.beam import (ListSource, MattingSettings, PatternSource, check_model, folder_pattern, is_local,
                          report, run_matting)
    from shm.io import check_output_dir, stop_on_sigterm_like_sigint, sweep_stale_temporaries
    from shm.outputs import parse_background

    stop_on_sigterm_like_sigint()

    try:
        background = parse_background(args.background) if args.background else None
        source = (ListSource(args.input_list) if args.input_list
                  else PatternSource(folder_pattern(args.input, args.recursive)))
        source.check()
        if is_local(args.output):
            check_output_dir(args.output)
            for path in sweep_stale_temporaries(args.output, recursive=True):
                print(f"note: removed {path}, a temporary file of an interrupted run")
        settings = MattingSettings(output=args.output, preset=args.preset, weights=args.weights,
                                   backend=args.backend, working_size=args.working_size, clamp=args.clamp,
                                   threads=args.threads, batch_size=args.batch_size, background=background,
                                   save_trimap=args.save_trimap, overwrite=args.overwrite,
                                   max_pixels=round(args.max_pixels * 1e6), trust_savedmodel=args.trust_savedmodel)
        check_model(settings)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    counts = run_matting(source, settings, beam_args)
    return report(counts, args.output, time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(main())
