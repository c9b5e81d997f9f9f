"""Trimaps from alpha mattes: the one trimap rule of the project, as TensorFlow ops, and the one
band rule (how wide a band a photo's size and a fraction give).

Classes are 0 Background, 1 Uncertain (unknown), 2 Foreground. The rule:

    Unknown    = dilate(alpha > 0, band) minus erode(alpha == 1, band)
    Foreground = erode(alpha == 1, band)
    Background = everything else (far from any non-zero alpha)

so every pixel with 0 < alpha < 1 is Unknown, whatever the band. Every function works eagerly (on
numpy arrays or tensors) and inside `tf.data` / `tf.function`; `band_px` may be a scalar tensor, so a
random band per sample works:

    band = random_band_px(tf.shape(alpha)[0], tf.shape(alpha)[1], seed=seed)
    trimap = trimap_from_alpha(alpha, band)

The morphology equals OpenCV's `cv2.dilate` / `cv2.erode` with a square `band_px` x `band_px`
kernel and its default anchor and border handling (the image border neither grows nor erodes a
region).

The band rule: `band_px(height, width, fraction, minimum)` is `fraction` of the shorter side in
pixels, rounded half to even, at least `minimum`; `band_px_tf` is its TF twin (tested equal) and
`random_band_px` draws the fraction. The trimaps of training and of `shm.alpha_from_mask` and the
edge band of `shm.validation` all take their widths from it.

Folders of masks or alphas become trimap PNGs with `write_trimap_folder` (the script
`generate_trimap.py`).

TensorFlow is imported by the functions that use it, so `band_px` serves the TensorFlow-free
validation path too.
"""

from __future__ import annotations

import functools
import os
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shm import batch, io

if TYPE_CHECKING:
    import tensorflow as tf

    TensorLike = tf.Tensor | np.ndarray | int | float

BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2
# Alphas within this of 0 or 1 count as sure background / foreground for the training targets:
# estimated alphas (`shm.alpha_from_mask`, resized photos) leave tiny non-zero values far from the person.
SOFT_THRESHOLD = 0.01
# A kernel of 3 px is the smallest band that gives a hard (binary) edge an unknown pixel on each side.
MIN_BAND_PX = 3


def _window_max(images: tf.Tensor, size: tf.Tensor, axis: int) -> tf.Tensor:
    """Max over a window of `size` along `axis` (1 rows, 2 columns) of NHWC images, OpenCV's anchor.

    Outside the image counts as 0. Costs O(log size) whole-image maxima (doubling: the max over 2p
    values is the max of two maxima over p), where a max-pool with a tensor window size costs O(size)
    per pixel.
    """
    import tensorflow as tf

    length = tf.shape(images)[axis]
    before = size // 2
    axis_mask = tf.one_hot(axis, 4, dtype=tf.int32)
    padded = tf.pad(images, tf.stack([axis_mask * before, axis_mask * (size - 1 - before)], axis=1))

    def along_axis(values: tf.Tensor, start: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        full = tf.shape(values)
        return tf.slice(values, axis_mask * start, full + axis_mask * (count - full))

    # After the loop, spanned[i] = the max of the `span` values from padded[i], span = the largest power
    # of two <= size; the window of `size` from i is then covered by two such spans.
    def double(span, values):
        count = tf.shape(values)[axis] - span
        return span * 2, tf.maximum(along_axis(values, 0, count), along_axis(values, span, count))

    invariant = tf.TensorShape([None] * 4)
    span, spanned = tf.while_loop(lambda span, _: span * 2 <= size, double, [tf.constant(1), padded],
                                  shape_invariants=[tf.TensorShape([]), invariant])
    return tf.maximum(along_axis(spanned, 0, length), along_axis(spanned, size - span, length))


def dilate(mask: tf.Tensor, size: TensorLike) -> tf.Tensor:
    """Morphological dilation of a float 0/1 mask, (H, W, 1) or (B, H, W, 1), by a size x size square."""
    import tensorflow as tf

    mask = tf.convert_to_tensor(mask, tf.float32)
    size = tf.maximum(tf.cast(size, tf.int32), 1)
    batched = mask if mask.shape.rank == 4 else mask[None]
    # A square max is separable: one pass along rows, one along columns.
    result = _window_max(_window_max(batched, size, axis=1), size, axis=2)
    return result if mask.shape.rank == 4 else result[0]


def erode(mask: tf.Tensor, size: TensorLike) -> tf.Tensor:
    """Morphological erosion of a float 0/1 mask (the dual of `dilate`; the image border does not erode)."""
    import tensorflow as tf

    return 1.0 - dilate(1.0 - tf.convert_to_tensor(mask, tf.float32), size)


def trimap_from_alpha(alpha: TensorLike, band_px: TensorLike, soft_threshold: float = 0.0) -> tf.Tensor:
    """Trimap class indices, int32 (H, W, 1) (or (B, H, W, 1)), from alpha float32 in [0, 1].

    `band_px` is the size of the dilation / erosion kernel in pixels (an int or a scalar tensor):
    the unknown band reaches about `band_px // 2` pixels beyond each side of the soft region, the
    pixels with `soft_threshold < alpha < 1 - soft_threshold`.
    """
    import tensorflow as tf

    alpha = tf.convert_to_tensor(alpha, tf.float32)
    if alpha.shape.rank not in (3, 4):
        raise ValueError(f"alpha must be (H, W, 1) or (B, H, W, 1), got shape {alpha.shape}")
    any_foreground = tf.cast(alpha > soft_threshold, tf.float32)
    not_sure_foreground = tf.cast(alpha < 1.0 - soft_threshold, tf.float32)
    # One dilation of both masks side by side (channels): reach = dilate(any), core = erode(sure).
    both = dilate(tf.concat([any_foreground, not_sure_foreground], axis=-1), band_px)
    reach, core = both[..., :1], 1.0 - both[..., 1:]
    return tf.cast(reach, tf.int32) + tf.cast(core, tf.int32)


def band_px(height: int, width: int, fraction: float, minimum: int = 1) -> int:
    """The band rule (module docstring): `fraction` of the shorter side in pixels, at least `minimum`.
    Python's `round` and `tf.round` both round half to even, and both compute in float64."""
    return max(minimum, int(round(fraction * min(height, width))))


def band_px_tf(height: TensorLike, width: TensorLike, fraction: TensorLike, minimum: int = 1) -> tf.Tensor:
    """`band_px` as TF ops, an int32 scalar; the sides and `fraction` may be scalar tensors."""
    import tensorflow as tf

    # A Python float goes to float64 directly: through float32 it would round differently from `band_px`.
    fraction = tf.cast(fraction, tf.float64) if tf.is_tensor(fraction) else tf.constant(fraction, tf.float64)
    shorter = tf.cast(tf.minimum(tf.cast(height, tf.int32), tf.cast(width, tf.int32)), tf.float64)
    return tf.maximum(tf.cast(tf.round(fraction * shorter), tf.int32), minimum)


def random_band_px(height: TensorLike, width: TensorLike, min_fraction: float = 0.01,
                   max_fraction: float = 0.05, seed: TensorLike | None = None, minimum: int = 1) -> tf.Tensor:
    """A random band width (int32 scalar >= `minimum`): `band_px_tf` of a fraction uniform in the range.

    With `seed` (a shape [2] integer tensor) the draw is stateless, i.e. reproducible inside `tf.data`
    per element; without it, the global TF random state is used.
    """
    import tensorflow as tf

    if not 0.0 <= min_fraction <= max_fraction:
        raise ValueError(f"need 0 <= min_fraction <= max_fraction, got {min_fraction}, {max_fraction}")
    if seed is None:
        fraction = tf.random.uniform([], min_fraction, max_fraction)
    else:
        fraction = tf.random.stateless_uniform([], tf.cast(seed, tf.int32), min_fraction, max_fraction)
    return band_px_tf(height, width, fraction, minimum)


def to_one_hot(trimap: TensorLike) -> tf.Tensor:
    """Class indices (..., 1) -> float32 one-hot (..., 3) ordered (Background, Uncertain, Foreground)."""
    import tensorflow as tf

    trimap = tf.convert_to_tensor(trimap)
    return tf.one_hot(tf.cast(trimap[..., 0], tf.int32), 3, dtype=tf.float32)


def to_png_values(trimap: TensorLike) -> np.ndarray:
    """Class indices (a numpy array or an eager tensor) -> uint8 numpy PNG values 0 / 128 / 255 (same
    shape): the one conversion of the trimap files and of inference's trimap output. Numpy, so the
    inference path that writes trimaps needs no TensorFlow."""
    return np.asarray(io.TRIMAP_PNG_VALUES, np.uint8)[np.asarray(trimap, np.intp)]


def file_band_px(name: str, height: int, width: int, band_fraction: tuple[float, float], seed: int) -> int:
    """The random band of one file (`random_band_px`), drawn from (`seed`, the file's name): the same file
    gets the same band whatever else is in its folder."""
    name_hash = zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF
    return int(random_band_px(height, width, band_fraction[0], band_fraction[1], seed=[seed, name_hash]))


def write_trimap_file(source: Path, target: Path, kernel: int | None = None,
                      band_fraction: tuple[float, float] = (0.01, 0.05), seed: int = 0, one_hot: bool = False) -> int:
    """Trimap of the mask or alpha file `source`, written atomically to the PNG `target`; returns the band.

    The band is `kernel` pixels if given, else random per file (`file_band_px`). The PNG is 1-channel
    0 / 128 / 255, or with `one_hot` 3-channel (Background, Uncertain, Foreground) 0 / 255.
    """
    alpha = io.read_alpha(source)
    height, width = alpha.shape
    band = kernel if kernel is not None else file_band_px(source.name, height, width, band_fraction, seed)
    classes = trimap_from_alpha(alpha[..., None], band)
    pixels = to_one_hot(classes).numpy() if one_hot else to_png_values(classes)
    io.write_png_atomic(target, pixels)
    return band


def write_trimap_folder(input_dir: str | os.PathLike, output_dir: str | os.PathLike, kernel: int | None = None,
                        band_fraction: tuple[float, float] = (0.01, 0.05), seed: int = 0, one_hot: bool = False,
                        workers: int = 1, quiet: bool = False) -> tuple[int, list[str]]:
    """Trimaps of every mask / alpha image in `input_dir` as `output_dir/<stem>.png`; (files, error lines).
    `quiet`: no progress bar (`shm.batch.run_per_file`).

    Raises `ValueError` before writing anything when the folders are the same, an output would replace
    an input, or the settings are invalid; a file that cannot be read is one error line, the others go on.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise ValueError(f"{input_dir}: no such folder")
    io.check_distinct_folders(output_dir, input_dir)
    if kernel is not None and kernel < 1:
        raise ValueError(f"kernel must be >= 1 pixel, got {kernel}")
    if not 0.0 <= band_fraction[0] <= band_fraction[1]:
        raise ValueError(f"need 0 <= min <= max band fraction, got {band_fraction}")
    sources = io.list_images(input_dir)
    io.check_no_input_overwritten([output_dir / f"{source.stem}.png" for source in sources], sources)
    targets: dict[Path, Path] = {}
    errors = []
    for source in sources:
        target = output_dir / f"{source.stem}.png"
        if target in targets:
            errors.append(f"{source}: same name as {targets[target].name}, both would write {target}")
            print(f"error: {errors[-1]}", file=sys.stderr)
            continue
        targets[target] = source
    write = functools.partial(_write_trimap_job, kernel=kernel, band_fraction=band_fraction, seed=seed,
                              one_hot=one_hot)
    errors += batch.run_per_file(write, list(targets.items()), workers, description="trimaps", quiet=quiet)
    return len(sources), errors


def _write_trimap_job(job: tuple[Path, Path], **settings) -> None:
    target, source = job
    write_trimap_file(source, target, **settings)
