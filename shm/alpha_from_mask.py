"""Soft alpha mattes and foreground / background colours from binary person masks.

The SHM recipe for data sets that only have binary masks: a trimap from the mask (the project's one
rule, `shm.trimap.trimap_from_alpha`, i.e. an unknown band of `band_px` around the mask's edge), then a
classical matting method inside the unknown band (closed-form matting by default, KNN matting as an
option; both from pymatting), then the foreground and background colours by pymatting's
multi-level foreground estimation.

Turn a folder in the project's layout (`DATA/image/*`, `DATA/mask/*`, paired by stem) into a matting
data set (`OUT/image` symlinks to the photos, `OUT/alpha`, `OUT/trimap`, `OUT/fg`, `OUT/bg`):

    python -m shm.alpha_from_mask --data DATA \
        --out DATA_SOFT --workers 2

A mask of another size than its photo is resized to it with nearest-neighbour interpolation. The
matting solve runs at most at `max_side` pixels on the long side (the alpha is then resized back with
bilinear interpolation, and the known regions are set exactly); foreground estimation always runs
at the photo's full size.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import cv2
import numpy as np

from shm import batch, io
from shm import trimap as tm

MattingMethod = Literal["cf", "knn"]
MATTING_METHODS = ("cf", "knn")
DEFAULT_BAND_FRACTION = 0.03
DEFAULT_MAX_SIDE = 1600


class MaskError(ValueError):
    """A mask that does not fit its photo (the message names the file)."""


@dataclass(frozen=True)
class SoftAlpha:
    """Result of `soft_alpha_from_mask`; all arrays have the photo's height and width."""

    alpha: np.ndarray  # float32 (H, W) in [0, 1]
    trimap: np.ndarray  # int32 (H, W) classes 0 / 1 / 2
    fg: np.ndarray  # float32 (H, W, 3) RGB in [0, 1]
    bg: np.ndarray  # float32 (H, W, 3) RGB in [0, 1]


def fit_mask(mask: np.ndarray, height: int, width: int, name: str = "mask") -> np.ndarray:
    """Binary float32 (height, width) mask: resized with nearest-neighbour if needed, thresholded at 0.5.

    Raises `MaskError` when the aspect ratios differ by more than 5 % (probably a wrong pairing).
    """
    if mask.shape != (height, width):
        mask_ratio = mask.shape[1] / mask.shape[0]
        image_ratio = width / height
        if abs(mask_ratio / image_ratio - 1.0) > 0.05:
            raise MaskError(f"{name}: mask is {mask.shape[1]}x{mask.shape[0]} but its photo is "
                            f"{width}x{height} (different aspect ratio)")
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return (mask > 0.5).astype(np.float32)


def mask_trimap(mask: np.ndarray, band_px: int) -> np.ndarray:
    """Trimap classes int32 (H, W) of a binary (H, W) mask: unknown band of kernel `band_px` on its edge."""
    return tm.trimap_from_alpha(mask[..., None].astype(np.float32), band_px).numpy()[..., 0]


def estimate_alpha(image: np.ndarray, trimap: np.ndarray, method: MattingMethod = "cf") -> np.ndarray:
    """Alpha float32 (H, W) from RGB float (H, W, 3) in [0, 1] and trimap classes (H, W).

    Known pixels keep their class exactly (0 or 1); only unknown pixels are solved for.
    """
    from pymatting import estimate_alpha_cf, estimate_alpha_knn

    known_background = trimap == tm.BACKGROUND
    known_foreground = trimap == tm.FOREGROUND
    unknown = trimap == tm.UNKNOWN
    alpha = known_foreground.astype(np.float64)
    if unknown.any():
        if not (known_background.any() or known_foreground.any()):
            raise ValueError("the trimap has no known pixels: nothing to propagate from")
        pymatting_trimap = np.where(known_foreground, 1.0, np.where(known_background, 0.0, 0.5))
        solve = {"cf": estimate_alpha_cf, "knn": estimate_alpha_knn}[method]
        solved = solve(image.astype(np.float64), pymatting_trimap)
        alpha = np.where(unknown, np.clip(solved, 0.0, 1.0), alpha)
    return alpha.astype(np.float32)


def soft_alpha_from_mask(image: np.ndarray, mask: np.ndarray, band_px: int,
                         method: MattingMethod = "cf", max_side: int = DEFAULT_MAX_SIDE) -> SoftAlpha:
    """Soft alpha, trimap, foreground and background of a photo from its binary mask.

    `image` is uint8 RGB (H, W, 3); `mask` a float (H, W) binary mask of the same size (see `fit_mask`);
    `band_px` the trimap kernel size at full resolution; `max_side` caps the matting solve's size.
    """
    from pymatting import estimate_foreground_ml

    if method not in MATTING_METHODS:
        raise ValueError(f"matting method must be one of {MATTING_METHODS}, not {method!r}")
    height, width = image.shape[:2]
    if mask.shape != (height, width):
        raise MaskError(f"mask is {mask.shape[1]}x{mask.shape[0]}, photo {width}x{height}: use fit_mask")
    rgb = image.astype(np.float64) / 255.0
    trimap = mask_trimap(mask, band_px)
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        small_trimap = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
        small_alpha = estimate_alpha(small_rgb, small_trimap, method)
        solved = cv2.resize(small_alpha, (width, height), interpolation=cv2.INTER_LINEAR)
        alpha = np.where(trimap == tm.FOREGROUND, 1.0,
                         np.where(trimap == tm.BACKGROUND, 0.0, np.clip(solved, 0.0, 1.0)))
    else:
        alpha = estimate_alpha(rgb, trimap, method)
    fg, bg = estimate_foreground_ml(rgb, alpha.astype(np.float64), return_background=True)
    return SoftAlpha(alpha=alpha.astype(np.float32), trimap=trimap.astype(np.int32),
                     fg=np.clip(fg, 0.0, 1.0).astype(np.float32), bg=np.clip(bg, 0.0, 1.0).astype(np.float32))


@dataclass(frozen=True)
class Pair:
    """A photo and its mask (paired by stem)."""

    image: Path
    mask: Path


@dataclass(frozen=True)
class PrepareSettings:
    out_dir: Path
    method: MattingMethod = "cf"
    band_fraction: float = DEFAULT_BAND_FRACTION
    kernel: int | None = None  # fixed band in pixels; overrides band_fraction
    max_side: int = DEFAULT_MAX_SIDE
    copy_images: bool = False
    skip_existing: bool = False


def pair_images_with_masks(data_dir: Path) -> tuple[list[Pair], list[str]]:
    """Pairs of `data_dir/image/*` with `data_dir/mask/*` by stem, and one error line per photo without mask."""
    image_dir, mask_dir = data_dir / "image", data_dir / "mask"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder (expected DATA/image and DATA/mask)")
    masks = {path.stem: path for path in io.list_images(mask_dir)}
    pairs, missing = [], []
    for image in io.list_images(image_dir):
        if image.stem in masks:
            pairs.append(Pair(image, masks[image.stem]))
        else:
            missing.append(f"{image}: no mask named {image.stem}.* in {mask_dir}")
    return pairs, missing


def _output_paths(pair: Pair, out_dir: Path) -> dict[str, Path]:
    stem = pair.image.stem
    paths = {kind: out_dir / kind / f"{stem}.png" for kind in ("alpha", "trimap", "fg", "bg")}
    paths["image"] = out_dir / "image" / pair.image.name
    return paths


def _place_image(source: Path, target: Path, copy: bool) -> None:
    """Symlink (or copy) the photo into the output data set, replacing an older link atomically."""
    with io.atomic_path(target) as temporary:
        if copy:
            shutil.copyfile(source, temporary)
        else:
            temporary.unlink()
            temporary.symlink_to(source.resolve())


def prepare_pair(pair: Pair, settings: PrepareSettings) -> None:
    """Write the soft alpha, trimap, fg, bg (and image link) of one photo into `settings.out_dir`."""
    outputs = _output_paths(pair, settings.out_dir)
    if settings.skip_existing and all(path.exists() for path in outputs.values()):
        return
    image = io.read_image(pair.image)
    height, width = image.shape[:2]
    mask = fit_mask(io.read_alpha(pair.mask), height, width, name=str(pair.mask))
    band = (settings.kernel if settings.kernel is not None
            else tm.band_px(height, width, settings.band_fraction, minimum=tm.MIN_BAND_PX))
    try:
        result = soft_alpha_from_mask(image, mask, band, settings.method, settings.max_side)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
        raise ValueError(f"{pair.image}: matting failed ({error})") from None
    io.write_png_atomic(outputs["alpha"], result.alpha)
    io.write_png_atomic(outputs["trimap"], tm.to_png_values(result.trimap))
    io.write_png_atomic(outputs["fg"], result.fg)
    io.write_png_atomic(outputs["bg"], result.bg)
    _place_image(pair.image, outputs["image"], settings.copy_images)


def limit_threads(threads: int) -> None:
    """Keep numba (pymatting) and TensorFlow to `threads` threads in this process."""
    import numba

    from shm.console import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TF already initialised in this process: its pools are fixed
        pass


def prepare_dataset(data_dir: str | os.PathLike, settings: PrepareSettings, workers: int = 1,
                    threads: int = 1, quiet: bool = False) -> tuple[int, list[str]]:
    """Soft-alpha data set from `data_dir` (image/ + mask/) into `settings.out_dir`; (photos, errors).
    `quiet`: no progress bar (`shm.batch.run_per_file`)."""
    data_dir = Path(data_dir)
    io.check_distinct_folders(settings.out_dir, data_dir, "the input data folder")
    pairs, missing = pair_images_with_masks(data_dir)
    # An image symlink left by an earlier run points at its input: it is replaced, not written through.
    io.check_no_input_overwritten([path for pair in pairs for path in _output_paths(pair, settings.out_dir).values()],
                                  [path for pair in pairs for path in (pair.image, pair.mask)])
    for error in missing:
        print(f"error: {error}", file=sys.stderr)
    errors = batch.run_per_file(functools.partial(prepare_pair, settings=settings), pairs, workers,
                                description="soft alpha", initializer=functools.partial(limit_threads, threads),
                                quiet=quiet)
    return len(pairs) + len(missing), missing + errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shm.alpha_from_mask",
        description="Soft alpha, trimap, foreground and background from binary masks (DATA/image + "
                    "DATA/mask -> OUT/image, OUT/alpha, OUT/trimap, OUT/fg, OUT/bg).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="input folder with image/ and mask/")
    parser.add_argument("--out", required=True, type=Path, help="output folder (must differ from --data)")
    parser.add_argument("--method", choices=MATTING_METHODS, default="cf",
                        help="matting inside the unknown band: closed-form (cf) or KNN matting")
    parser.add_argument("--band-fraction", type=float, default=DEFAULT_BAND_FRACTION,
                        help="trimap kernel size as a fraction of the photo's shorter side (at least 3 px)")
    parser.add_argument("--kernel", type=int, default=None,
                        help="fixed trimap kernel size in pixels (overrides --band-fraction)")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help="the matting solve runs at most at this long side (alpha resized back)")
    parser.add_argument("--workers", type=int, default=1, help="processes working in parallel")
    parser.add_argument("--threads", type=int, default=1, help="numba / TensorFlow threads per process")
    parser.add_argument("--copy-images", action="store_true",
                        help="copy the photos into OUT/image instead of symlinking them")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip photos whose five outputs all exist (resume an interrupted run)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only errors (on stderr): no progress bar, no summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.kernel is not None and args.kernel < 1:
        print(f"error: --kernel must be >= 1, got {args.kernel}", file=sys.stderr)
        return 2
    settings = PrepareSettings(out_dir=args.out, method=args.method, band_fraction=args.band_fraction,
                               kernel=args.kernel, max_side=args.max_side, copy_images=args.copy_images,
                               skip_existing=args.skip_existing)
    start = time.perf_counter()
    try:
        total, errors = prepare_dataset(args.data, settings, args.workers, args.threads, quiet=args.quiet)
    except batch.Interrupted as stop:
        print(batch.summary_line(stop.attempted, stop.errors, "photos", interrupted=True))
        return batch.INTERRUPTED_STATUS
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    if not args.quiet:
        print(batch.summary_line(total, errors, "photos"))
        print(f"time: {elapsed:.1f} s, {elapsed / max(total, 1):.2f} s per photo with {args.workers} worker(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
