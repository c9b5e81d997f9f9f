"""Edge-aware upsampling of a low-resolution alpha to the full-resolution photo.

The network predicts alpha at its working size; a plain resize of that alpha blurs hair and
edges. The guided filter (He, Sun & Tang, TPAMI 2013) models the output as a local linear function
of the guide photo, `q = A . I + b`; the Fast Guided Filter (He & Sun, arXiv:1505.00996) computes
`A`, `b` at low resolution and only upsamples them, so the full-resolution work is one resize and
one multiply-add per pixel: fast on 12 MP photos, and the edges come from the full-resolution photo.
"""

from __future__ import annotations

import cv2
import numpy as np


def box_mean(array: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 * radius + 1)^2 window around each pixel (any number of channels)."""
    size = 2 * radius + 1
    return cv2.blur(array, (size, size), borderType=cv2.BORDER_REFLECT)


def resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W) or (H, W, C) arrays: area averaging to shrink, bilinear to enlarge."""
    if array.shape[:2] == (height, width):
        return array
    shrinking = height * width < array.shape[0] * array.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    channels = array.shape[2] if array.ndim == 3 else 0
    resized = cv2.resize(array, (width, height), interpolation=interpolation)
    return resized[..., None] if channels == 1 else resized


def guided_filter_coefficients(guide: np.ndarray, source: np.ndarray, radius: int,
                               eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged coefficients (A (H, W, 3), b (H, W)) of the colour guided filter.

    `guide` is float32 RGB (H, W, 3) in [0, 1], `source` float32 (H, W); the filtered source is
    `sum(A * guide, axis=-1) + b`. `eps` regularises the fit: larger means smoother.
    """
    guide = guide.astype(np.float32, copy=False)
    source = source.astype(np.float32, copy=False)
    mean_guide = box_mean(guide, radius)
    mean_source = box_mean(source, radius)
    covariance_guide_source = box_mean(guide * source[..., None], radius) \
        - mean_guide * mean_source[..., None]
    # The 3x3 covariance of the guide in each window, from the 6 distinct channel products.
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    products = np.stack([guide[..., i] * guide[..., j] for i, j in pairs], axis=-1)
    mean_products = box_mean(products, radius)
    sigma = np.empty(guide.shape[:2] + (3, 3), np.float32)
    for k, (i, j) in enumerate(pairs):
        value = mean_products[..., k] - mean_guide[..., i] * mean_guide[..., j]
        sigma[..., i, j] = value
        sigma[..., j, i] = value
    sigma += eps * np.eye(3, dtype=np.float32)
    coefficient = np.linalg.solve(sigma, covariance_guide_source[..., None])[..., 0]
    offset = mean_source - np.einsum("hwc,hwc->hw", coefficient, mean_guide)
    return box_mean(coefficient, radius), box_mean(offset, radius)


def guided_upsample(alpha_low: np.ndarray, image: np.ndarray, radius: int = 1,
                    eps: float = 1e-5) -> np.ndarray:
    """Bring a low-resolution alpha (h, w) to the size of `image` (H, W, 3), following its edges.

    `image` is uint8 or float RGB in [0, 1] at full resolution. The guided-filter coefficients
    are fitted between `alpha_low` and the photo shrunk to (h, w) (`radius` in low-resolution
    pixels), then upsampled bilinearly and applied to the full-resolution photo (Fast Guided
    Filter). Works for any ratio of sizes (also when the network ran above the photo's size).
    Returns float32 (H, W) in [0, 1].
    """
    height, width = image.shape[:2]
    low_height, low_width = alpha_low.shape[:2]
    # Pixel values stay as they are at full resolution: the 1/255 of uint8 goes into A instead.
    scale = np.float32(1.0 / 255.0 if image.dtype == np.uint8 else 1.0)
    guide_low = resize(image, low_height, low_width).astype(np.float32) * scale
    coefficient, offset = guided_filter_coefficients(guide_low, alpha_low, radius, eps)
    coefficient = resize(coefficient * scale, height, width)
    alpha = resize(offset, height, width)
    for channel in range(3):  # in place, to keep 12 MP photos within a few full-size buffers
        alpha += coefficient[..., channel] * image[..., channel]
    return np.clip(alpha, 0.0, 1.0, out=alpha)
