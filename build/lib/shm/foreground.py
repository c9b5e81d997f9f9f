"""Foreground colours for a cut-out, and compositing onto a new background.

`image * alpha` keeps the old background's colour in every semi-transparent pixel (hair gets a
halo of the old wall). The blur-fusion estimator of Forte & Pitie ("Approximate Fast Foreground
Colour Estimation", ICIP 2021) removes it with a few box filters: linear in the number of pixels
and independent of the blur radius, so it stays fast on 12 MP photos.
"""

from __future__ import annotations

import cv2
import numpy as np

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


def _shrunk_local_means(image: np.ndarray, alpha: np.ndarray,
                        size: int) -> tuple[np.ndarray, np.ndarray]:
    """`_local_means(image, alpha, size)` computed at most MEANS_SIZE px wide, enlarged back."""
    height, width = alpha.shape
    scale = min(1.0, MEANS_SIZE / max(height, width))
    if scale == 1.0:
        return _local_means(image, alpha, size)
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small_image = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    small_alpha = cv2.resize(alpha, small_size, interpolation=cv2.INTER_AREA)
    means = _local_means(small_image, small_alpha, max(3, round(size * scale)))
    return tuple(cv2.resize(mean, (width, height), interpolation=cv2.INTER_LINEAR) for mean in means)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray,
                        blur_size: int | None = None) -> np.ndarray:
    """Foreground colours F (H, W, 3) float32 in [0, 1] such that image ~ alpha F + (1 - alpha) B.

    `image` is uint8 or float RGB in [0, 1], `alpha` float (H, W). Two passes of blur fusion
    (Forte & Pitie 2021, "blur fusion x2"): a large box (`blur_size`, by default 4.5 % of the
    longer side, i.e. the paper's 90 px on 2000 px photos; its means are computed on a shrunk
    copy) and then a 6 px one at full resolution, as in the authors' code. Where alpha is 0 the
    colour is meaningless (and invisible).
    """
    # A fresh float copy of the photo: it becomes the result in place (12 MP images are
    # memory-bound, so the code below reuses its few full-size buffers).
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    alpha = alpha.astype(np.float32, copy=False)
    if blur_size is None:
        blur_size = max(3, round(0.045 * max(alpha.shape)))
    # Opaque pixels keep the photo's colour (the fusion gives exactly that at alpha 1) and
    # transparent ones are invisible: only the soft pixels need the arithmetic, which on a
    # portrait is a small part of a 12 MP photo.
    soft_mask = (alpha > _TRANSPARENT) & (alpha < _OPAQUE)
    # Gathering pixels pays off when few are soft; otherwise work on whole arrays (views).
    soft = np.nonzero(soft_mask) if soft_mask.mean() < 0.5 else Ellipsis
    image_soft, alpha_soft = image[soft], alpha[soft]
    mean_foreground, mean_background = _shrunk_local_means(image, alpha, blur_size)
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


def composite(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """`alpha F + (1 - alpha) B` as uint8 RGB; `background` is RGB (H, W, 3) or one colour (3,).

    Inputs may be uint8 or float in [0, 1].
    """
    def as_float(array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 \
            else array.astype(np.float32, copy=False)

    alpha = alpha.astype(np.float32, copy=False)[..., None]
    blended = as_float(background) + alpha * (as_float(foreground) - as_float(background))
    return np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)
