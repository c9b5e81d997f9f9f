"""Backgrounds without people, cut from the training photos themselves.

Training composites people onto other backgrounds (`shm.data`, `--backgrounds-dir`). Another
photo's estimated background (`bg/`) still holds a ghost of the person removed from it, so the pool
is made of real photo regions far from every labelled person instead: for each photo, the largest
rectangle whose pixels are all at least `margin` (a fraction of the shorter side) from the mask,
kept when both its sides are at least `min_fraction` of the photo's and `min_side` pixels.
Unlabelled passers-by (CCP labels one person per photo) can remain in such a region.

    python -m shm.backgrounds --data ../shared/data/ccp --list-file ../shared/data/ccp/train.txt \
        --out data/backgrounds
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from shm import io

# The free-space search runs on a grid of this many pixels per cell: exact enough, and fast.
GRID_PX = 8


def largest_free_rectangle(free: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the largest all-True axis-aligned rectangle of a boolean
    (H, W) array (the maximal rectangle of histograms, O(H W)); zeros when nothing is free."""
    best, best_area = (0, 0, 0, 0), 0
    heights = np.zeros(free.shape[1], np.int64)
    for row in range(free.shape[0]):
        heights = np.where(free[row], heights + 1, 0)
        stack: list[tuple[int, int]] = []  # (start column, height), heights increasing
        for column, height in enumerate([*heights.tolist(), 0]):
            start = column
            while stack and stack[-1][1] >= height:
                start, top_height = stack.pop()
                area = top_height * (column - start)
                if area > best_area:
                    best_area, best = area, (row - top_height + 1, start, top_height, column - start)
            stack.append((start, height))
    return best


def person_free_region(mask: np.ndarray, margin: float = 0.05) -> tuple[int, int, int, int]:
    """The largest rectangle (top, left, height, width) of a photo at least `margin` times its
    shorter side away from every pixel of `mask` (float or bool (H, W), person > 0.01)."""
    height, width = mask.shape
    grid = (max(1, height // GRID_PX), max(1, width // GRID_PX))
    person = cv2.resize((mask > 0.01).astype(np.uint8), grid[::-1], interpolation=cv2.INTER_AREA) > 0
    radius = max(1, round(margin * min(height, width) / GRID_PX))
    near_person = cv2.dilate(person.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    top, left, rows, columns = largest_free_rectangle(~near_person)
    # Grid cells back to pixels, shrunk to whole cells inside the photo.
    scale_y, scale_x = height / grid[0], width / grid[1]
    return (int(np.ceil(top * scale_y)), int(np.ceil(left * scale_x)),
            int(rows * scale_y) - 1 if rows else 0, int(columns * scale_x) - 1 if columns else 0)


def cut_backgrounds(data_dir: str | Path, out_dir: str | Path, list_file: str | Path | None = None,
                    margin: float = 0.05, min_fraction: float = 0.3, min_side: int = 96) -> tuple[int, int]:
    """Write `out_dir/NAME.jpg`, the person-free region of each photo of `data_dir` (image/ and
    mask/ or alpha/) that is large enough; returns (written, photos looked at). `ValueError` when
    `out_dir` is one of the input folders."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    target = data_dir / ("alpha" if (data_dir / "alpha").is_dir() else "mask")
    for folder in (data_dir, data_dir / "image", target):
        io.check_distinct_folders(out_dir, folder, f"the input folder {folder}")
    images, targets = io.images_by_stem(data_dir / "image"), io.images_by_stem(target)
    stems = sorted(images) if list_file is None else Path(list_file).read_text().split()
    written = 0
    for stem in stems:
        if stem not in images or stem not in targets:
            continue
        image = io.read_image(images[stem][0])
        mask = io.read_alpha(targets[stem][0])
        if mask.shape != image.shape[:2]:
            mask = cv2.resize(mask, image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        top, left, height, width = person_free_region(mask, margin)
        if min(height, width) < min_side or height < min_fraction * image.shape[0] \
                or width < min_fraction * image.shape[1]:
            continue
        crop = image[top:top + height, left:left + width]
        with io.atomic_path(out_dir / f"{stem}.jpg") as temporary:
            cv2.imwrite(str(temporary), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        written += 1
    return written, len(stems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with image/ and mask/ (or alpha/)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the background JPEGs (created)")
    parser.add_argument("--list-file", type=Path, help="only these stems, one per line (default: every photo)")
    parser.add_argument("--margin", type=float, default=0.05,
                        help="distance kept from the person, as a fraction of the shorter side (default: %(default)s)")
    parser.add_argument("--min-fraction", type=float, default=0.3,
                        help="smallest region side as a fraction of the photo's side (default: %(default)s)")
    parser.add_argument("--min-side", type=int, default=96, help="smallest region side in pixels (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        written, total = cut_backgrounds(args.data, args.out, args.list_file, args.margin, args.min_fraction,
                                         args.min_side)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{written} backgrounds of {total} photos written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
