"""Foreground colours for a cut-out, and compositing onto a new background.

`image * alpha` keeps the old background's colour in every semi-transparent pixel (hair gets a
halo of the old wall). The blur-fusion estimator of Forte & Pitie ("Approximate Fast Foreground
Colour Estimation", ICIP 2021) removes it with a few box filters: linear in the number of pixels
and independent of the blur radius, so it stays fast on 12 MP photos.
"""

from __future__ import annotations

import cv2
import numpy as np

from shm.compositing import composite as matting_equation
from shm.io import row_bands, to_uint8
from shm.upsampling import RowUpsampler

_EPS = 1e-5
# Alphas that round to 0 or 255 in an 8-bit matte.
_TRANSPARENT, _OPAQUE = 0.5 / 255, 1.0 - 0.5 / 255
# The large first-pass blur gives smooth colour means: computing them on a copy shrunk so the longer
# side is at most this many pixels, then enlarging them, gives the same means much faster.
MEANS_SIZE = 512


def _blur(array: np.ndarray, size: int) -> np.ndarray:
    return cv2.blur(array, (size, size), borderType=cv2.BORDER_REFLECT)


def _local_means(image: np.ndarray, alpha: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Box means (`size` px) of the image weighted by alpha (mean F) and by 1 - alpha (mean B)."""
    blurred_alpha = _blur(alpha, size)[..., None]
    alpha = alpha[..., None]
    mean_foreground = _blur(image * alpha, size) / (blurred_alpha + _EPS)
    mean_background = _blur(image * (1.0 - alpha), size) / (1.0 - blurred_alpha + _EPS)
    return mean_foreground, mean_background


def _fuse(image: np.ndarray, alpha: np.ndarray, mean_foreground: np.ndarray,
          mean_background: np.ndarray) -> np.ndarray:
    """F = mean F + alpha (I - alpha mean F - (1 - alpha) mean B), the blur-fusion correction.

    Works on (..., 3) colours with (...) alphas: whole images or gathered pixels.
    """
    alpha = alpha[..., None]
    residual = image - mean_background
    residual -= alpha * (mean_foreground - mean_background)
    residual *= alpha
    residual += mean_foreground
    return np.clip(residual, 0.0, 1.0, out=residual)


def _shrink(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """`cv2.resize(array as float32, INTER_AREA)` without a full-size float32 copy: area averaging is
    separable, so each band of rows is converted and shrunk across, then the narrow result down."""
    scale = np.float32(1.0 / 255.0 if array.dtype == np.uint8 else 1.0)
    if array.shape[:2] == (height, width):
        return array.astype(np.float32) * scale
    narrow = np.concatenate([cv2.resize(array[rows].astype(np.float32) * scale, (width, rows.stop - rows.start),
                                        interpolation=cv2.INTER_AREA) for rows in row_bands(array.shape[0])])
    return cv2.resize(narrow, (width, height), interpolation=cv2.INTER_AREA)


def _shrunk_local_means(image: np.ndarray, alpha: np.ndarray, size: int) -> tuple[RowUpsampler, RowUpsampler]:
    """`_local_means(image, alpha, size)` computed at most MEANS_SIZE px wide, to be enlarged back
    band by band (`RowUpsampler`). `image` is uint8 or float RGB in [0, 1]."""
    height, width = alpha.shape
    scale = min(1.0, MEANS_SIZE / max(height, width))
    small_height, small_width = max(1, round(height * scale)), max(1, round(width * scale))
    means = _local_means(_shrink(image, small_height, small_width), _shrink(alpha, small_height, small_width),
                         max(3, round(size * scale)) if scale < 1.0 else size)
    return tuple(RowUpsampler(mean, height, width) for mean in means)


# Rows above and below a band that the second pass's 6 px box needs (it reaches 3 up and 2 down).
_HALO = 4


def estimate_foreground(image: np.ndarray, alpha: np.ndarray,
                        blur_size: int | None = None) -> np.ndarray:
    """Foreground colours F (H, W, 3) float32 in [0, 1] such that image ~ alpha F + (1 - alpha) B.

    `image` is uint8 or float RGB in [0, 1], `alpha` float (H, W). Two passes of blur fusion
    (Forte & Pitie 2021, "blur fusion x2"): a large box (`blur_size`, by default 4.5 % of the
    longer side, i.e. the paper's 90 px on 2000 px photos; its means are computed on a shrunk
    copy) and then a 6 px one at full resolution, as in the authors' code, in bands of rows with
    the few rows of margin that box needs (the same result, a few bands of memory). Where alpha is
    0 the colour is meaningless (and invisible).
    """
    alpha = alpha.astype(np.float32, copy=False)
    height = alpha.shape[0]
    if blur_size is None:
        blur_size = max(3, round(0.045 * max(alpha.shape)))
    mean_foregrounds, mean_backgrounds = _shrunk_local_means(image, alpha, blur_size)
    result = np.empty((*alpha.shape, 3), np.float32)
    for rows in row_bands(height):
        start, stop = max(0, rows.start - _HALO), min(height, rows.stop + _HALO)
        inner = slice(rows.start - start, rows.stop - start)
        result[rows] = _fuse_band(image[start:stop], alpha[start:stop], mean_foregrounds.rows(start, stop),
                                  mean_backgrounds.rows(start, stop))[inner]
    return result


def _fuse_band(image: np.ndarray, alpha: np.ndarray, mean_foreground: np.ndarray,
               mean_background: np.ndarray) -> np.ndarray:
    """Both passes of `estimate_foreground` on a band of rows (its first-pass means given); rows
    within `_HALO` of a band edge that is not the photo's are not exact."""
    # A fresh float copy of the band: it becomes the result in place.
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    # Opaque pixels keep the photo's colour (the fusion gives exactly that at alpha 1) and
    # transparent ones are invisible: only the soft pixels need the arithmetic, which on a
    # portrait is a small part of a 12 MP photo.
    soft_mask = (alpha > _TRANSPARENT) & (alpha < _OPAQUE)
    # Gathering pixels pays off when few are soft; otherwise work on whole arrays (views).
    soft = np.nonzero(soft_mask) if soft_mask.mean() < 0.5 else Ellipsis
    image_soft, alpha_soft = image[soft], alpha[soft]
    first_soft = _fuse(image_soft, alpha_soft, mean_foreground[soft], mean_background[soft])
    # Second pass (6 px) as in the authors' code: box sums of F alpha and B (1 - alpha) need every
    # pixel, the division and the fusion only the soft ones.
    weighted_foreground = mean_foreground
    np.copyto(weighted_foreground, image)
    weighted_foreground[soft] = first_soft
    weighted_foreground *= alpha[..., None]
    weighted_background = mean_background
    weighted_background *= (1.0 - alpha)[..., None]
    blurred_alpha = _blur(alpha, 6)[soft][..., None]
    second_foreground = _blur(weighted_foreground, 6)[soft] / (blurred_alpha + _EPS)
    second_background = _blur(weighted_background, 6)[soft] / (1.0 - blurred_alpha + _EPS)
    image[soft] = _fuse(image_soft, alpha_soft, second_foreground, second_background)
    return image


def composite_uint8(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """`shm.compositing.composite` (`alpha F + (1 - alpha) B`) as uint8 RGB, for outputs and the
    camera preview; `background` is RGB (H, W, 3) or one colour (3,).

    Inputs may be uint8 or float in [0, 1]; worked out in bands of rows (no full-size float copies).
    """
    def as_float(array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 \
            else array.astype(np.float32, copy=False)

    background = np.asarray(background)
    mixed = np.empty((*alpha.shape, 3), np.uint8)
    for rows in row_bands(alpha.shape[0]):
        band_background = as_float(background if background.ndim == 1 else background[rows])
        blended = matting_equation(alpha[rows].astype(np.float32, copy=False)[..., None],
                                   as_float(foreground[rows]), band_background)
        mixed[rows] = to_uint8(blended)
    return mixed
