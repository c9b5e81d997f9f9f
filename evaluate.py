"""Evaluate predicted alpha mattes against ground truth: DIM SAD / MSE / Gradient / Connectivity and
whole-image SAD / MSE / MAD, per image (CSV + plot) and as means (terminal).

Or score model files on validation splits through the real inference path at full resolution,
the shipped model beside them (whole-image SAD and IoU against binary masks, SAD against soft
alphas and in the edge band; `shm.validation`):

Examples:
    python evaluate.py --pred out/alpha --gt data/test/alpha --trimap data/test/trimap --csv out/errors.csv
    python evaluate.py --model runs/shm_v2.onnx --split data/ccp_val data/hs290_val

A prediction `NAME.png` or `NAME_alpha.png` pairs with the ground truth (and trimap) `NAME.*`; an
inference.py output folder works as it is (its `_rgba`, `_composite`, ... files are left out).
Definitions and units: docs/evaluation.md. Exit status 1 when any prediction could not be evaluated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shm.console import report, report_error
from shm.evaluation import (CSV_COLUMNS, EvaluationError, check_outputs_are_not_inputs, evaluate_folders, plot_errors,
                            plot_path_for, summary_table, write_csv)
from shm.upsampling import DEFAULT_CLAMP, clamp_margin


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", type=Path,
                        help="folder of predicted alphas (greyscale or RGBA PNG/JPEG...; required without --model)")
    parser.add_argument("--gt", type=Path,
                        help="folder of ground-truth alphas: greyscale images or the alpha channel of RGBA PNGs "
                             "(required with --pred)")
    parser.add_argument("--trimap", type=Path, default=None,
                        help="folder of 0/128/255 trimaps; enables SAD, MSE, Gradient and Connectivity over the "
                             "unknown (128) pixels (default: none, only whole-image errors)")
    parser.add_argument("--csv", type=Path, default=None,
                        help=f"write per-image errors here (header: {','.join(CSV_COLUMNS)}) and a plot of them "
                             "beside it with the suffix .png (default: none, terminal summary only)")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bar (default: shown on a terminal, never in a log file)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the results table (stdout) and errors (stderr): no progress bar, no "
                             "'wrote' lines (default: a progress bar on a terminal, and the files written)")
    group = parser.add_argument_group("scoring models on validation splits (instead of --pred / --gt)")
    group.add_argument("--model", type=Path, nargs="*",
                       help="SHM model files (.onnx, .keras, .tflite...) to score beside the shipped model "
                            "(none: the shipped model alone)")
    group.add_argument("--split", type=Path, nargs="+",
                       help="validation folders with image/, mask/ and optionally alpha/ (soft alphas)")
    group.add_argument("--threads", type=int, default=None, help="runtime threads (default: all cores)")
    group.add_argument("--working-size", type=int, default=None, metavar="PIXELS",
                       help="longer side the networks run at (default: the lite preset's, as inference.py)")
    group.add_argument("--clamp", type=clamp_margin, default=DEFAULT_CLAMP, metavar="MARGIN",
                       help="alpha clamp margin, as inference.py's (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.model is None and (args.pred is None or args.gt is None):
        parser.error("give --pred and --gt, or --model and --split")
    if args.model is not None and not args.split:
        parser.error("--model needs --split")
    return args


def show_progress(args: argparse.Namespace) -> bool:
    return not (args.no_progress or args.quiet)


def score_models(args: argparse.Namespace) -> int:
    from shm.validation import ValidationSplit, comparison_table, compare_models

    try:
        splits = [ValidationSplit.from_folder(folder) for folder in args.split]
        results = compare_models(["shipped", *args.model], splits, args.threads, progress=show_progress(args),
                                 working_size=args.working_size, clamp=args.clamp)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(comparison_table(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model is not None:
        return score_models(args)
    for flag, folder in (("--pred", args.pred), ("--gt", args.gt), ("--trimap", args.trimap)):
        if folder is not None and not folder.is_dir():
            print(f"error: {flag} {folder}: not a folder", file=sys.stderr)
            return 2
    if args.csv is not None:
        try:
            check_outputs_are_not_inputs([args.csv, plot_path_for(args.csv)], [args.pred, args.gt, args.trimap])
        except EvaluationError as error:
            print(f"error: --csv {error}", file=sys.stderr)
            return 2
    evaluation = evaluate_folders(args.pred, args.gt, args.trimap, progress=show_progress(args),
                                  on_failure=report_error)
    if not evaluation.results and not evaluation.failures:
        print(f"error: --pred {args.pred}: no images found", file=sys.stderr)
        return 2
    print(summary_table(evaluation.results, evaluation.failures))
    if args.csv is not None:
        report(f"wrote {write_csv(args.csv, evaluation.results)}", args.quiet)
        if evaluation.results:
            report(f"wrote {plot_errors(plot_path_for(args.csv), evaluation.results)}", args.quiet)
    return 1 if evaluation.failures else 0


if __name__ == "__main__":
    sys.exit(main())
