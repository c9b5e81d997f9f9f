"""Small pure TF functions that transform one training sample (used by `shm.data`'s pipelines).

A *sample* here is a dict of tensors: spatial entries `image`, `fg`, `bg` (H, W, 3) and `alpha`
(H, W, 1), all float32 in [0, 1], plus scalars. Geometric functions move every spatial entry
together, so an image never drifts from its alpha. Random functions take a stateless seed (an int
tensor of shape (2,)) and are pure: the same seed gives the same result, in `tf.data` or eagerly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import tensorflow as tf

from shm.compositing import composite
from shm.upsampling import resize_tf

SPATIAL_KEYS = ("image", "alpha", "fg", "bg")

# Rec. 601 luma: saturation changes move a colour towards this grey.
_LUMA = (0.299, 0.587, 0.114)
# RGB -> YIQ: hue is a rotation of the (I, Q) plane, so a hue shift is a linear map of RGB.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


@dataclass(frozen=True)
class Augmentation:
    """Strength of each random augmentation of the training pipelines (0 or False disables one).

    max_zoom: a view shows the photo (or a window of another aspect) zoomed in by up to this.
    reframe_prob: probability of a window of another aspect than the photo's (`VIEW_ASPECTS`).
    framing_prob: probability of a head-and-shoulders or half-body window (zoom `FRAMING_ZOOM`)
        at the top of the person, the framings people matte most, made from any photo.
    brightness, contrast, saturation: maximum change (additive for brightness, relative otherwise).
    hue: maximum hue rotation, as a fraction of a full turn.
    composite_prob: probability of compositing a known foreground onto a random background.
    group_prob: probability of a group view: another sample's person composited beside the first,
        in front of or behind it (`place_beside`, `add_person`), the targets their union. Photos
        with one person labelled (CCP) otherwise teach that a view holds one person only.
    trimap_blur_px, trimap_smoothing: stage 2's input trimap perturbation (`shm.data.perturbed_trimap`).
    """

    flip: bool = True
    max_zoom: float = 1.25
    reframe_prob: float = 0.25
    framing_prob: float = 0.3
    brightness: float = 0.1
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03
    composite_prob: float = 0.5
    group_prob: float = 0.25
    trimap_blur_px: int = 9
    trimap_smoothing: float = 0.2


_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_KINDS = {bool: "true or false", int: "a whole number", float: "a number"}


def augmentation_with(changes: Sequence[str]) -> Augmentation:
    """The default `Augmentation` with fields changed by `FIELD=VALUE` texts (training's `--augment
    framing_prob=0`); `ValueError` naming the text for an unknown field or an unusable value."""
    fields = {field.name: type(field.default) for field in dataclasses.fields(Augmentation)}
    values = {}
    for change in changes:
        name, _, text = change.partition("=")
        if name not in fields or not text:
            raise ValueError(f"--augment takes FIELD=VALUE with FIELD one of {', '.join(fields)}, got {change!r}")
        kind = fields[name]
        try:
            values[name] = _BOOLEANS[text.lower()] if kind is bool else kind(text)
        except (KeyError, ValueError):
            raise ValueError(f"--augment {name} takes {_KINDS[kind]}, got {text!r}") from None
        if values[name] < 0 or (name.endswith("_prob") and values[name] > 1):
            raise ValueError(f"--augment {name} must be {'in [0, 1]' if name.endswith('_prob') else 'at least 0'}, "
                             f"got {text!r}")
    return dataclasses.replace(Augmentation(), **values)

# Height / width of the windows of another aspect than the photo's: landscape 16:9 (video calls) and
# 4:3, square (profile pictures), portrait 3:4 and 9:16 (phones).
VIEW_ASPECTS = (9 / 16, 3 / 4, 1.0, 4 / 3, 16 / 9)
# Zoom range of the framing windows: half the photo's height (half body) to a third (head and shoulders).
FRAMING_ZOOM = (1.5, 3.0)
# Group views: the second person's height as a fraction of the first's; the distance of their centres
# in units of their boxes' mean width (below 1 the boxes overlap, by at most half); how far the
# bottoms (feet) may be apart, as a fraction of the first person's height.
GROUP_SCALE = (0.8, 1.2)
GROUP_SPACING = (0.5, 1.2)
GROUP_SHIFT = 0.1


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


def resize_to_network(sample: dict, hw: tf.Tensor) -> dict:
    """Every spatial entry resized to the network size `hw` as `shm.Matter` resizes a photo; the
    image is then rounded to 8 bits, as Matter's uint8 resize rounds it."""
    resized = spatial_map(sample, lambda x: resize_tf(x, hw))
    resized["image"] = tf.round(resized["image"] * 255.0) / 255.0
    return resized


def random_view_box(hw: tf.Tensor, alpha: tf.Tensor, augmentation: "Augmentation",
                    seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """A training window (top, left, height, width) of a photo of size `hw` with alpha (H, W, 1).

    The largest window of the photo's aspect (or, with `reframe_prob`, of one of `VIEW_ASPECTS`)
    zoomed in by 1 to `max_zoom` and placed at random; or, with `framing_prob`, zoomed in by
    `FRAMING_ZOOM`, its top a little above the person's top and centred on the person.
    """
    aspect_seed, pick_seed, frame_seed, zoom_seed, top_seed, left_seed, margin_seed = split_seed(seed, 7)
    size = tf.cast(hw, tf.float32)
    other_aspect = tf.gather(tf.constant(VIEW_ASPECTS, tf.float32),
                             tf.random.stateless_uniform([], pick_seed, 0, len(VIEW_ASPECTS), dtype=tf.int32))
    reframe = tf.random.stateless_uniform([], aspect_seed) < augmentation.reframe_prob
    aspect = tf.where(reframe, other_aspect, size[0] / size[1])
    framing = tf.random.stateless_uniform([], frame_seed) < augmentation.framing_prob
    zoom = tf.where(framing, tf.random.stateless_uniform([], zoom_seed, *FRAMING_ZOOM),
                    tf.random.stateless_uniform([], zoom_seed, 1.0, max(augmentation.max_zoom, 1.0 + 1e-6)))
    height = tf.minimum(size[0], size[1] * aspect) / zoom
    box = tf.clip_by_value(tf.cast(tf.round(tf.stack([height, height / aspect])), tf.int32), 1, hw)
    room = hw - box

    rows, columns = _person_rows_columns(alpha, 0.5)
    has_person = tf.reduce_any(rows)
    person_top = tf.cast(tf.argmax(tf.cast(rows, tf.int32)), tf.float32)
    column_indices = tf.cast(tf.range(hw[1]), tf.float32)
    person_centre = tf.reduce_sum(column_indices * tf.cast(columns, tf.float32)) / tf.maximum(
        tf.reduce_sum(tf.cast(columns, tf.float32)), 1.0)
    margin = tf.random.stateless_uniform([], margin_seed, 0.0, 0.25) * tf.cast(box[0], tf.float32)
    framed_top = tf.cast(tf.round(person_top - margin), tf.int32)
    framed_left = tf.cast(tf.round(person_centre - tf.cast(box[1], tf.float32) / 2), tf.int32)
    use_framing = tf.logical_and(framing, has_person)
    top = tf.where(use_framing, tf.clip_by_value(framed_top, 0, room[0]), _random_offset(room[0], top_seed))
    left = tf.where(use_framing, tf.clip_by_value(framed_left, 0, room[1]), _random_offset(room[1], left_seed))
    return top, left, box[0], box[1]


def _person_rows_columns(alpha: tf.Tensor, threshold: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Which rows and which columns of alpha (H, W, 1) hold a pixel above `threshold`."""
    person = alpha[..., 0] > threshold
    return tf.reduce_any(person, axis=1), tf.reduce_any(person, axis=0)


def _span(occupied: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """First and one-past-last index of True in a boolean vector; (0, length) when there is none."""
    flags = tf.cast(occupied, tf.int32)
    first = tf.cast(tf.argmax(flags), tf.int32)
    return first, tf.shape(flags)[0] - tf.cast(tf.argmax(tf.reverse(flags, [0])), tf.int32)


def person_box(alpha: tf.Tensor, threshold: float) -> tf.Tensor:
    """The box (top, left, bottom, right), int32, bottom and right exclusive, of the pixels of alpha
    (H, W, 1) above `threshold`; the whole image when there are none."""
    rows, columns = _person_rows_columns(alpha, threshold)
    top, bottom = _span(rows)
    left, right = _span(columns)
    return tf.stack([top, left, bottom, right])


def box_in_view(box: tf.Tensor, top, left, height, width, view_hw: tf.Tensor) -> tf.Tensor:
    """A (top, left, bottom, right) box of a photo in the pixels of a view: the window (`top`,
    `left`, `height`, `width`) of the photo resized to `view_hw`. float32; may lie beyond the view."""
    origin = tf.cast(tf.stack([top, left, top, left]), tf.float32)
    scale = tf.cast(view_hw, tf.float32) / tf.cast(tf.stack([height, width]), tf.float32)
    return (tf.cast(box, tf.float32) - origin) * tf.tile(scale, [2])


def paste(layers: tf.Tensor, top: tf.Tensor, left: tf.Tensor, hw: tf.Tensor) -> tf.Tensor:
    """`layers` (h, w, C) placed with its top left corner at (`top`, `left`) (int32, may be
    negative) on zeros of size `hw`; what falls outside is cut off."""
    size = tf.shape(layers)[:2]
    offset = tf.stack([top, left])
    start = tf.clip_by_value(offset, 0, hw)
    skipped = tf.clip_by_value(-offset, 0, size)
    extent = tf.maximum(tf.minimum(size - skipped, hw - start), 0)
    piece = layers[skipped[0]:skipped[0] + extent[0], skipped[1]:skipped[1] + extent[1]]
    after = hw - start - extent
    return tf.pad(piece, [[start[0], after[0]], [start[1], after[1]], [0, 0]])


def place_beside(layers: tf.Tensor, cut: tf.Tensor, first: tf.Tensor, view_hw: tf.Tensor,
                 seed: tf.Tensor) -> tf.Tensor:
    """A second person beside the first, as a group photo would show them, on zeros of size `view_hw`.

    `layers` (h, w, C): the second person's alpha and colours cut to its box (`person_box`); `cut`
    bool (4,): whether that box touches its photo's top, left, bottom, right (the person is cut off
    there); `first` float (4,): the first person's box in view pixels (`box_in_view`, may reach
    beyond the view). The person is scaled to `GROUP_SCALE` times the first's height, its bottom
    within `GROUP_SHIFT` of the first's, its centre `GROUP_SPACING` box widths to the left or right
    (the other side when that is outside the view; at worst clipped to the view's edge, so at least
    half of it shows). An edge where it is cut off stays at or beyond the view's edge: no straight
    cut through the air.
    """
    scale_seed, shift_seed, spacing_seed, side_seed = split_seed(seed, 4)
    size = tf.cast(tf.shape(layers)[:2], tf.float32)
    view = tf.cast(view_hw, tf.float32)
    first_height, first_width = first[2] - first[0], first[3] - first[1]
    height = tf.random.stateless_uniform([], scale_seed, *GROUP_SCALE) * first_height
    width = size[1] * height / size[0]
    scaled = tf.maximum(tf.cast(tf.round(tf.stack([height, width])), tf.int32), 1)

    bottom = first[2] + tf.random.stateless_uniform([], shift_seed, -GROUP_SHIFT, GROUP_SHIFT) * first_height
    top = tf.cast(tf.round(bottom), tf.int32) - scaled[0]
    distance = tf.random.stateless_uniform([], spacing_seed, *GROUP_SPACING) * (first_width + width) / 2
    side = tf.where(tf.random.stateless_uniform([], side_seed) < 0.5, -1.0, 1.0)
    first_centre = (first[1] + first[3]) / 2
    centre = first_centre + side * distance
    centre = tf.where(tf.logical_or(centre < 0, centre > view[1]), first_centre - side * distance, centre)
    left = tf.cast(tf.round(tf.clip_by_value(centre, 0.0, view[1]) - width / 2), tf.int32)

    left = tf.where(cut[1], tf.minimum(left, 0), left)
    left = tf.where(cut[3], tf.maximum(left, view_hw[1] - scaled[1]), left)
    top = tf.where(cut[0], tf.minimum(top, 0), top)
    top = tf.where(cut[2], tf.maximum(top, view_hw[0] - scaled[0]), top)
    top = tf.clip_by_value(top, 1 - scaled[0], view_hw[0] - 1)  # at least one row in the view
    return paste(resize_tf(layers, scaled), top, left, view_hw)


def add_person(sample: dict, alpha: tf.Tensor, fg: tf.Tensor, in_front: tf.Tensor) -> dict:
    """The sample with a second person (alpha (H, W, 1), colours fg (H, W, 3), at the sample's size)
    in front of (`in_front`, a bool tensor) or behind its own.

    Alpha becomes the union a_front + a_back (1 - a_front); fg the colour of what shows, the
    premultiplied colours over that union; the image both people over the sample's bg, so that
    `composite(alpha, fg, bg)` is the image.
    """
    own_alpha, own_fg = sample["alpha"], sample["fg"]
    front_alpha, back_alpha = tf.where(in_front, alpha, own_alpha), tf.where(in_front, own_alpha, alpha)
    front_fg, back_fg = tf.where(in_front, fg, own_fg), tf.where(in_front, own_fg, fg)
    union = front_alpha + back_alpha * (1.0 - front_alpha)
    premultiplied = front_alpha * front_fg + (1.0 - front_alpha) * back_alpha * back_fg
    # Where nobody is, the sample's own fg (its estimate there) stays.
    union_fg = tf.where(union > 0, tf.math.divide_no_nan(premultiplied, union), own_fg)
    return {**sample, "alpha": union, "fg": union_fg, "image": composite(union, union_fg, sample["bg"])}


def box_blur(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Mean over a `size` x `size` window (odd size, a tensor is fine) of an (H, W, C) image; the
    window is cut at the borders, so a field of probabilities still sums to 1 everywhere."""
    channels = tf.shape(image)[-1]
    row = tf.ones(tf.stack([size, 1, channels, 1]), image.dtype)

    def window_sum(x):
        x = tf.nn.depthwise_conv2d(x, row, [1, 1, 1, 1], "SAME")
        return tf.nn.depthwise_conv2d(x, tf.transpose(row, [1, 0, 2, 3]), [1, 1, 1, 1], "SAME")

    batch = image[None]
    return (window_sum(batch) / window_sum(tf.ones_like(batch)))[0]


def image_hw(sample: dict) -> tf.Tensor:
    """The (height, width) of a sample, as an int32 tensor."""
    return tf.shape(sample["alpha"])[:2]


def _random_offset(room: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed, minval=0, maxval=room + 1, dtype=tf.int32)


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
