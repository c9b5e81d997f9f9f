"""Edge-aware upsampling of a low-resolution alpha to the full-resolution photo.

The network predicts alpha at its working size; a plain resize of that alpha blurs hair and
edges. The guided filter (He, Sun & Tang, TPAMI 2013) models the output as a local linear function
of the guide photo, `q = A . I + b`; the Fast Guided Filter (He & Sun, arXiv:1505.00996) computes
`A`, `b` at low resolution and only upsamples them, so the full-resolution work is one resize and
one multiply-add per pixel: fast on 12 MP photos, and the edges come from the full-resolution photo.

Full-resolution work goes in bands of `shm.io.BAND_ROWS` rows (`RowUpsampler`), so that memory beyond the
photo and its outputs stays a few low-resolution planes whatever the photo's size.
"""

from __future__ import annotations

import cv2
import numpy as np

from shm.io import row_bands


def box_mean(array: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 * radius + 1)^2 window around each pixel (any number of channels)."""
    size = 2 * radius + 1
    return cv2.blur(array, (size, size), borderType=cv2.BORDER_REFLECT)


def resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W) or (H, W, C) arrays: area averaging to shrink, bilinear to enlarge.

    The rule training applies too (`resize_tf`, tested equal): uint8 arrays are enlarged in float
    and rounded, as OpenCV's fixed-point uint8 bilinear weights are not exact.
    """
    if array.shape[:2] == (height, width):
        return array
    shrinking = height * width < array.shape[0] * array.shape[1]
    channels = array.shape[2] if array.ndim == 3 else 0
    if shrinking:
        resized = cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA)
    elif array.dtype == np.uint8:
        resized = np.rint(cv2.resize(array.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
                          ).astype(np.uint8)
    else:
        resized = cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)
    return resized[..., None] if channels == 1 else resized


def resize_tf(image, hw):
    """`resize` as TF ops, for `tf.data` (training's views, `shm.compositing.fit_background_tf`): an
    (H, W, C) float tensor to the int32 (2,) size `hw`, area averaging to shrink, bilinear to enlarge
    (equal to OpenCV's INTER_AREA / INTER_LINEAR on float images)."""
    import tensorflow as tf

    old_hw = tf.shape(image)[:2]
    shrinking = tf.reduce_prod(hw) < tf.reduce_prod(old_hw)
    return tf.cond(shrinking, lambda: tf.image.resize(image, hw, method="area"),
                   lambda: tf.image.resize(image, hw, method="bilinear"))


class RowUpsampler:
    """`resize(low, height, width)` one band of rows at a time (`rows(start, stop)`), equal to the whole
    resize to float rounding: bilinear enlargement is a horizontal pass (kept, low rows x full width)
    then a blend of two of its rows per output row, with OpenCV's pixel-centre mapping and edge clamping.
    A shrink in either direction (the photo smaller than `low`: small anyway) is done whole."""

    def __init__(self, low: np.ndarray, height: int, width: int):
        self.height = height
        low_height, low_width = low.shape[:2]
        if height < low_height or width < low_width:
            self._whole, self._wide = resize(low, height, width), None
            return
        self._whole = None
        self._wide = resize(low, low_height, width)  # horizontal pass only
        source = (np.arange(height, dtype=np.float64) + 0.5) * (low_height / height) - 0.5
        first = np.floor(source).astype(np.int64)
        weight = (source - first).astype(np.float32)
        weight[first < 0] = 0.0
        weight[first >= low_height - 1] = 0.0
        self._first = np.clip(first, 0, low_height - 1)
        self._second = np.minimum(self._first + 1, low_height - 1)
        self._weight = weight

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows `start:stop` of the upsampled array."""
        if self._whole is not None:
            return self._whole[start:stop]
        weight = self._weight[start:stop].reshape((-1,) + (1,) * (self._wide.ndim - 1))
        top = self._wide[self._first[start:stop]]
        band = self._wide[self._second[start:stop]]
        band -= top
        band *= weight
        band += top
        return band


def upsample_classes(probabilities: np.ndarray, height: int, width: int) -> np.ndarray:
    """The most probable class (uint8 (H, W)) of each pixel of (h, w, C) probabilities resized to
    `height` x `width` (`resize`), worked out in bands of rows (`RowUpsampler`)."""
    upsampler = RowUpsampler(probabilities, height, width)
    classes = np.empty((height, width), np.uint8)
    for rows in row_bands(height):
        classes[rows] = np.argmax(upsampler.rows(rows.start, rows.stop), axis=-1)
    return classes


def guided_filter_coefficients(guide: np.ndarray, source: np.ndarray, radius: int,
                               eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged coefficients (A (H, W, 3), b (H, W)) of the colour guided filter.

    `guide` is float RGB (H, W, 3) in [0, 1], `source` float (H, W); the filtered source is
    `sum(A * guide, axis=-1) + b`. `eps` regularises the fit: larger means smoother.
    """
    # float64 planes: variances are differences of near-equal means, and with a small eps each
    # window's determinant (a product of three of them) needs more than float32's precision.
    # Contiguous planes and a closed-form 3x3 inverse: ~5x faster than np.linalg.solve per pixel.
    red, green, blue = (np.ascontiguousarray(plane, dtype=np.float64) for plane in np.moveaxis(guide, -1, 0))
    source = source.astype(np.float64)
    mean_red, mean_green, mean_blue, mean_source = (box_mean(plane, radius) for plane in (red, green, blue, source))

    def covariance(first, second, mean_first, mean_second):
        return box_mean(first * second, radius) - mean_first * mean_second

    rr = covariance(red, red, mean_red, mean_red) + eps
    rg = covariance(red, green, mean_red, mean_green)
    rb = covariance(red, blue, mean_red, mean_blue)
    gg = covariance(green, green, mean_green, mean_green) + eps
    gb = covariance(green, blue, mean_green, mean_blue)
    bb = covariance(blue, blue, mean_blue, mean_blue) + eps
    red_source = covariance(red, source, mean_red, mean_source)
    green_source = covariance(green, source, mean_green, mean_source)
    blue_source = covariance(blue, source, mean_blue, mean_source)
    # The inverse of the symmetric [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]] by cofactors.
    inverse_rr, inverse_rg, inverse_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    inverse_gg, inverse_gb, inverse_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    determinant = rr * inverse_rr + rg * inverse_rg + rb * inverse_rb
    a_red = (inverse_rr * red_source + inverse_rg * green_source + inverse_rb * blue_source) / determinant
    a_green = (inverse_rg * red_source + inverse_gg * green_source + inverse_gb * blue_source) / determinant
    a_blue = (inverse_rb * red_source + inverse_gb * green_source + inverse_bb * blue_source) / determinant
    offset = mean_source - a_red * mean_red - a_green * mean_green - a_blue * mean_blue
    coefficient = np.stack([box_mean(plane, radius) for plane in (a_red, a_green, a_blue)], axis=-1)
    return coefficient.astype(np.float32), box_mean(offset, radius).astype(np.float32)


def guided_upsample(alpha_low: np.ndarray, image: np.ndarray, radius: int = 1,
                    eps: float = 1e-5, image_low: np.ndarray | None = None) -> np.ndarray:
    """Bring a low-resolution alpha (h, w) to the size of `image` (H, W, 3), following its edges.

    `image` is uint8 or float RGB in [0, 1] at full resolution. The guided-filter coefficients
    are fitted between `alpha_low` and the photo shrunk to (h, w) (`radius` in low-resolution
    pixels), then upsampled bilinearly and applied to the full-resolution photo (Fast Guided
    Filter). Works for any ratio of sizes (also when the network ran above the photo's size).
    `image_low`: `image` already resized to (h, w) (`resize`, the same dtype), e.g. the network's
    input, to save resizing it again. Returns float32 (H, W) in [0, 1].
    """
    height, width = image.shape[:2]
    low_height, low_width = alpha_low.shape[:2]
    # Pixel values stay as they are at full resolution: the 1/255 of uint8 goes into A instead.
    scale = np.float32(1.0 / 255.0 if image.dtype == np.uint8 else 1.0)
    guide_low = (resize(image, low_height, low_width) if image_low is None else image_low).astype(np.float32) * scale
    coefficient, offset = guided_filter_coefficients(guide_low, alpha_low, radius, eps)
    # A, b as one 4-channel plane, upsampled and applied band by band: no full-size copy of them.
    planes = RowUpsampler(np.dstack([coefficient * scale, offset]), height, width)
    alpha = np.empty((height, width), np.float32)
    for rows in row_bands(height):
        band = planes.rows(rows.start, rows.stop)
        alpha_band = alpha[rows]
        np.copyto(alpha_band, band[..., 3])
        for channel in range(3):
            alpha_band += band[..., channel] * image[rows, :, channel]
    return np.clip(alpha, 0.0, 1.0, out=alpha)


# Measured on the validation photos and the P3M samples: docs/inference.md, "Clamp".
DEFAULT_CLAMP = 0.05


def check_clamp_margin(margin: float) -> float:
    """`margin` if `clamp_alpha` can use it, else `ValueError`."""
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"the alpha clamp margin must be in [0, 0.5), got {margin}")
    return margin


def clamp_alpha(alpha: np.ndarray, margin: float) -> np.ndarray:
    """Alphas within `margin` of 0 or 1 set to 0 or 1, the rest stretched linearly in between
    (`(alpha - margin) / (1 - 2 margin)`), in place on float32 `alpha`, which it returns.

    The network leaves a faint haze over the background and a slight transparency inside the body
    (docs/inference.md, "Clamp"); a linear stretch removes both without a jump at the margins, as a
    threshold would make. `margin` 0 returns `alpha` unchanged.
    """
    if check_clamp_margin(margin):
        for rows in row_bands(alpha.shape[0]):
            band = alpha[rows]
            band -= np.float32(margin)
            band *= np.float32(1.0 / (1.0 - 2.0 * margin))
            np.clip(band, 0.0, 1.0, out=band)
    return alpha


def clamp_margin(text: str) -> float:
    """argparse type of `--clamp`: a margin `clamp_alpha` takes."""
    import argparse

    try:
        return check_clamp_margin(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
