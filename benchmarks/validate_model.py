"""Validation figures of a trained SHM model on a folder of photos with reference alphas.

Whole-image SAD (sum |p - g| / 1000), MSE, MAD and IoU at 0.5 per photo and as means, the median
time of a 600x800 photo to full-resolution alpha (network + guided upsampling), and optional
side-by-side PNGs (photo, predicted alpha, cut-out on a colour). The photos run through the
library's validation loop (`shm.validation.predictions`, on a split without masks). The model
card's figures:

    python benchmarks/validate_model.py --data-dir ../shared/data/human_seg_290_soft \
        --list-file splits/human_seg_290/val.txt
    python benchmarks/validate_model.py --data-dir ../shared/data/p3m_samples --alpha-dir alpha_pred \
        --side-by-side 3 --side-by-side-dir docs/img --side-by-side-prefix p3m
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shm.console import report_error  # noqa: E402
from shm.inference import Matter  # noqa: E402
from shm.io import write_png_atomic  # noqa: E402
from shm.metrics import matting_errors  # noqa: E402
from shm.validation import ValidationSplit, predictions  # noqa: E402

FIGURES = ("sad_whole", "mse_whole", "mad_whole", "iou")


def side_by_side(image: np.ndarray, alpha: np.ndarray, colour=(0, 200, 80), height: int = 360) -> np.ndarray:
    """Photo | predicted alpha | cut-out on a flat colour, scaled to `height` pixels."""
    cutout = alpha[..., None] * image + (1.0 - alpha[..., None]) * np.asarray(colour, np.float32)
    panels = [image.astype(np.float32), np.repeat(alpha[..., None] * 255.0, 3, axis=2), cutout]
    width = round(image.shape[1] * height / image.shape[0])
    return np.hstack([cv2.resize(p, (width, height), interpolation=cv2.INTER_AREA) for p in panels]
                     ).clip(0, 255).astype(np.uint8)


def time_600x800(matter: Matter, repeats: int = 10) -> float:
    """Median seconds of `Matter.predict` on a 600x800 photo (scikit-image's astronaut, resized)."""
    from skimage import data

    photo = cv2.resize(data.astronaut(), (600, 800), interpolation=cv2.INTER_AREA)
    matter.predict(photo)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matter.predict(photo)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="SHM model file (default: the lite preset's shipped weights)")
    parser.add_argument("--data-dir", required=True, help="folder with image/ and an alpha folder")
    parser.add_argument("--alpha-dir", default="alpha", help="name of the reference alpha folder (default: alpha)")
    parser.add_argument("--list-file", default=None, help="only these stems, one per line (default: every photo)")
    parser.add_argument("--working-size", type=int, default=None, metavar="PIXELS",
                        help="longer side the network runs at (default: the lite preset's, as inference.py)")
    parser.add_argument("--side-by-side", type=int, default=0, metavar="N",
                        help="write N side-by-side PNGs, the first N photos by name (default: 0)")
    parser.add_argument("--side-by-side-dir", default="docs/img", help="where they go (default: docs/img)")
    parser.add_argument("--side-by-side-prefix", default="val", help="their file name prefix (default: val)")
    args = parser.parse_args(argv)

    data_dir = Path(args.data_dir)
    try:
        split = ValidationSplit.from_folder(data_dir, args.list_file, alpha_dir=args.alpha_dir, masks=False)
    except ValueError as error:
        report_error(str(error))
        return 1
    matter = Matter.from_preset("lite", weights=args.weights, working_size=args.working_size)
    pictured = {photo.name for photo in sorted(split.photos, key=lambda photo: photo.name)[:args.side_by_side]}
    rows = []
    for result in predictions(matter.predict, split, progress=True):
        errors = matting_errors(result.alpha, result.soft_alpha).as_dict()
        rows.append({name: float(errors[name]) for name in FIGURES})
        if result.photo.name in pictured:
            write_png_atomic(Path(args.side_by_side_dir) / f"{args.side_by_side_prefix}_{result.photo.name}.png",
                             side_by_side(result.image, result.alpha))
    print(f"{len(rows)} photos of {data_dir} (reference: {args.alpha_dir}/)")
    print("| " + " | ".join(FIGURES) + " |")
    print("|" + " --- |" * len(FIGURES))
    print("| " + " | ".join(f"{np.mean([r[name] for r in rows]):.4f}" for name in FIGURES) + " |")
    print(f"600x800 photo to full-resolution alpha: median {time_600x800(matter) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
