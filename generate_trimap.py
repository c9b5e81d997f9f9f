"""Turn a folder of masks or alpha mattes into trimaps named like their sources.

    python generate_trimap.py --input DATA/alpha --output DATA/trimap --kernel 15
    python generate_trimap.py --input DATA/mask --output DATA/trimap --band-min 0.01 --band-max 0.05 --seed 0

Each trimap follows the project's rule (`shm.trimap.trimap_from_alpha`): Unknown = dilate(alpha > 0)
minus erode(alpha == 1) with a square kernel of `--kernel` pixels, or of a random size per image (a
fraction of its shorter side, drawn reproducibly from `--seed` and the file's name). Output: 1-channel
PNG 0 / 128 / 255, or with `--one-hot` a 3-channel PNG (Background, Uncertain, Foreground) of 0 / 255.
Inputs are never overwritten; a file that cannot be read is reported in one line and skipped; the exit
status is 1 when any file failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from shm import batch
from shm.trimap import write_trimap_folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Trimaps (0/128/255 PNG) from a folder of masks or alphas.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--input", required=True, type=Path, help="folder of masks or alpha mattes")
    parser.add_argument("--output", required=True, type=Path, help="folder for the trimaps (not --input)")
    parser.add_argument("--kernel", type=int, default=None,
                        help="fixed kernel size in pixels; without it, a random size per image")
    parser.add_argument("--band-min", type=float, default=0.01,
                        help="random kernel: smallest size as a fraction of the image's shorter side")
    parser.add_argument("--band-max", type=float, default=0.05,
                        help="random kernel: largest size as a fraction of the image's shorter side")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random kernel sizes")
    parser.add_argument("--one-hot", action="store_true",
                        help="write 3-channel one-hot PNGs (Background, Uncertain, Foreground) instead")
    parser.add_argument("--workers", type=int, default=1, help="processes working in parallel")
    parser.add_argument("--quiet", action="store_true",
                        help="print only errors (on stderr): no progress bar, no summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        total, errors = write_trimap_folder(args.input, args.output, kernel=args.kernel,
                                            band_fraction=(args.band_min, args.band_max), seed=args.seed,
                                            one_hot=args.one_hot, workers=args.workers, quiet=args.quiet)
    except batch.Interrupted as stop:
        print(batch.summary_line(stop.attempted, stop.errors, "files", interrupted=True))
        return batch.INTERRUPTED_STATUS
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(batch.summary_line(total, errors, "files"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
