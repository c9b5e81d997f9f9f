"""Small pure TF functions that transform one training sample (used by `shm.data`'s pipelines).

A *sample* here is a dict of tensors: spatial entries `image`, `fg`, `bg` (H, W, 3) and `alpha`
(H, W, 1), all float32 in [0, 1], plus scalars. Geometric functions move every spatial entry
together, so an image never drifts from its alpha. Random functions take a stateless seed (an int
tensor of shape (2,)) and are pure: the same seed gives the same result, in `tf.data` or eagerly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

SPATIAL_KEYS = ("image", "alpha", "fg", "bg")

# Rec. 601 luma: saturation changes move a colour towards this grey.
_LUMA = (0.299, 0.587, 0.114)
# RGB -> YIQ: hue is a rotation of the (I, Q) plane, so a hue shift is a linear map of RGB.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


@dataclass(frozen=True)
class Augmentation:
    """Strength of each random augmentation of the training pipelines (0 or False disables one).

    min_scale: scale jitter of the whole-image stages; a crop of `min_scale` to 1 times the image
        height and width (same factor for both) is resized to the working size.
    brightness, contrast, saturation: maximum change (additive for brightness, relative otherwise).
    hue: maximum hue rotation, as a fraction of a full turn.
    composite_prob: probability of compositing a known foreground onto a random background.
    """

    flip: bool = True
    min_scale: float = 0.75
    brightness: float = 0.1
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03
    composite_prob: float = 0.5


def split_seed(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
    """`count` independent stateless seeds derived from one."""
    return list(tf.unstack(tf.random.experimental.stateless_split(seed, num=count)))


def spatial_map(sample: dict, fn) -> dict:
    """Apply `fn` to every spatial entry of `sample`; other entries are kept as they are."""
    return {key: fn(value) if key in SPATIAL_KEYS else value for key, value in sample.items()}


def flip_left_right(sample: dict) -> dict:
    """Mirror every spatial entry horizontally."""
    return spatial_map(sample, lambda x: tf.reverse(x, axis=[1]))


def random_flip(sample: dict, seed: tf.Tensor) -> dict:
    """Mirror the whole sample with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return tf.cond(flip, lambda: flip_left_right(sample), lambda: dict(sample))


def crop(sample: dict, top, left, height, width) -> dict:
    """Cut the same window out of every spatial entry."""
    return spatial_map(sample, lambda x: x[top:top + height, left:left + width])


def resize(sample: dict, height: int, width: int) -> dict:
    """Resize every spatial entry bilinearly to (height, width)."""
    return spatial_map(sample, lambda x: tf.image.resize(x, (height, width), method="bilinear"))


def image_hw(sample: dict) -> tf.Tensor:
    """The (height, width) of a sample, as an int32 tensor."""
    return tf.shape(sample["alpha"])[:2]


def random_scale_box(hw: tf.Tensor, min_scale: float, seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """A window of `s` times the image's height and width, s uniform in [min_scale, 1], placed
    uniformly at random; returns (top, left, height, width)."""
    scale_seed, top_seed, left_seed = split_seed(seed, 3)
    scale = tf.random.stateless_uniform([], scale_seed, minval=min_scale, maxval=1.0)
    size = tf.maximum(tf.cast(tf.round(tf.cast(hw, tf.float32) * scale), tf.int32), 1)
    top = _random_offset(hw[0] - size[0], top_seed)
    left = _random_offset(hw[1] - size[1], left_seed)
    return top, left, size[0], size[1]


def unknown_centred_box(unknown: tf.Tensor, side: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """A square window of `side` (at most the image's shorter side) centred on a random pixel where
    `unknown` (H, W) is true, shifted to lie inside the image; the image centre when no pixel is.

    Returns (top, left, side, side).
    """
    hw = tf.shape(unknown)[:2]
    side = tf.minimum(tf.cast(side, tf.int32), tf.reduce_min(hw))
    candidates = tf.cast(tf.where(unknown), tf.int32)
    count = tf.shape(candidates)[0]
    pick = tf.random.stateless_uniform([], seed, minval=0, maxval=tf.maximum(count, 1), dtype=tf.int32)
    centre = tf.cond(count > 0, lambda: candidates[pick], lambda: hw // 2)
    top = tf.clip_by_value(centre[0] - side // 2, 0, hw[0] - side)
    left = tf.clip_by_value(centre[1] - side // 2, 0, hw[1] - side)
    return top, left, side, side


def _random_offset(room: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed, minval=0, maxval=room + 1, dtype=tf.int32)


def composite(alpha: tf.Tensor, fg: tf.Tensor, bg: tf.Tensor) -> tf.Tensor:
    """The matting equation: alpha * fg + (1 - alpha) * bg."""
    return alpha * fg + (1.0 - alpha) * bg


def fit_background(background: tf.Tensor, height: int, width: int, seed: tf.Tensor) -> tf.Tensor:
    """Scale a background photo to cover (height, width) keeping its aspect ratio, then cut a random
    (height, width) window out of it."""
    hw = tf.cast(tf.shape(background)[:2], tf.float32)
    target = tf.constant([height, width], tf.float32)
    scale = tf.reduce_max(target / hw)
    covered = tf.maximum(tf.cast(tf.math.ceil(hw * scale), tf.int32), [height, width])
    background = tf.image.resize(background, covered, method="bilinear")
    top_seed, left_seed = split_seed(seed, 2)
    top = _random_offset(covered[0] - height, top_seed)
    left = _random_offset(covered[1] - width, left_seed)
    return background[top:top + height, left:left + width]


def random_colour_transform(seed: tf.Tensor, brightness: float, contrast: float, saturation: float,
                            hue: float) -> tuple[tf.Tensor, tf.Tensor]:
    """A random affine colour map `x -> x @ matrix + offset` of RGB pixels (row vectors).

    Brightness, contrast (about mid-grey), saturation and hue are all affine in RGB, so one map
    does them all; being affine it commutes with compositing:
    map(alpha*fg + (1-alpha)*bg) == alpha*map(fg) + (1-alpha)*map(bg), which keeps a jittered
    image consistent with its jittered foreground and background.
    """
    b_seed, c_seed, s_seed, h_seed = split_seed(seed, 4)
    shift = tf.random.stateless_uniform([], b_seed, -brightness, brightness)
    gain = 1.0 + tf.random.stateless_uniform([], c_seed, -contrast, contrast)
    sat = 1.0 + tf.random.stateless_uniform([], s_seed, -saturation, saturation)
    angle = 2.0 * math.pi * tf.random.stateless_uniform([], h_seed, -hue, hue)

    luma = tf.constant(_LUMA, tf.float32)
    # Column-vector form M x: saturation blends towards grey (luma . x).
    saturate = sat * tf.eye(3) + (1.0 - sat) * tf.ones([3, 1]) * luma[None, :]
    to_yiq = tf.constant(_RGB_TO_YIQ, tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    rotate = tf.stack([[1.0, 0.0, 0.0], tf.stack([0.0, cos, -sin]), tf.stack([0.0, sin, cos])])
    hue_map = tf.linalg.inv(to_yiq) @ rotate @ to_yiq
    column_matrix = gain * (hue_map @ saturate)
    offset = 0.5 * (1.0 - gain) + shift
    return tf.transpose(column_matrix), tf.fill([3], offset)


def apply_colour_transform(rgb: tf.Tensor, matrix: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Apply an affine colour map to an (..., 3) image and clip it to [0, 1]."""
    shape = tf.shape(rgb)
    mapped = tf.reshape(rgb, [-1, 3]) @ matrix + offset
    return tf.clip_by_value(tf.reshape(mapped, shape), 0.0, 1.0)
