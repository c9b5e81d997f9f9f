"""Alpha-matting errors in numpy: the Deep Image Matting (DIM) four, and whole-image errors.

`sad`, `mse`, `gradient_error` and `connectivity_error` reproduce the MATLAB evaluation code of
Deep Image Matting (Xu et al., CVPR 2017; `evaluate.m` and its `compute_*` functions): they sum
over the trimap's unknown pixels, and the Gradient and Connectivity errors are divided by 1000 as
`evaluate.m` does. `tests/fixtures/metrics/` holds the reference values they are tested against.

Inputs (every function):
- alphas: `(H, W)` for one image or `(B, H, W)` for a batch; a trailing axis of size 1 is dropped,
  so `(H, W, 1)` and `(B, H, W, 1)` work too. `uint8` arrays are 0..255 (divided by 255); any other
  dtype is taken as alpha in [0, 1].
- trimap: see `unknown_region`; an `(H, W)` trimap applies to every image of a batch.
- one image gives a Python `float`, a batch a float64 array of shape `(B,)`.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from shm.io import TRIMAP_PNG_VALUES

TRIMAP_UNKNOWN = TRIMAP_PNG_VALUES[1]
GRADIENT_SIGMA = 1.4
CONNECTIVITY_LEVELS = 10  # thresholds 0.1, 0.2, ..., 1.0 (DIM's `step = 0.1`)
CONNECTIVITY_MIN_DISTANCE = 0.15  # DIM's theta: smaller distances to the level count as 0


def _squeeze_channel(array: np.ndarray) -> np.ndarray:
    return array[..., 0] if array.ndim >= 3 and array.shape[-1] == 1 else array


def _to_alpha(array: np.ndarray) -> np.ndarray:
    array = _squeeze_channel(np.asarray(array))
    if array.ndim not in (2, 3):
        raise ValueError(f"alpha must be (H, W) or (B, H, W) (optionally with a last axis of 1), got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    return array.astype(np.float64, copy=False)


def _alpha_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = _to_alpha(pred), _to_alpha(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    return pred, gt


def unknown_region(trimap: np.ndarray) -> np.ndarray:
    """The trimap's unknown pixels as a boolean array (channel axis of size 1 dropped).

    A boolean array is the region itself (e.g. `classes == 1` for 0/1/2 class indices); an integer
    array is a 0/128/255 trimap (unknown = 128); a float array is that trimap divided by 255.
    """
    trimap = _squeeze_channel(np.asarray(trimap))
    if trimap.dtype == np.bool_:
        return trimap
    if np.issubdtype(trimap.dtype, np.integer):
        return trimap == TRIMAP_UNKNOWN
    return np.rint(trimap * 255.0) == TRIMAP_UNKNOWN


def _region_for(trimap: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    region = unknown_region(trimap)
    try:
        return np.broadcast_to(region, shape)
    except ValueError:
        raise ValueError(f"trimap shape {region.shape} does not fit alpha shape {shape}") from None


def _per_image(values: np.ndarray) -> float | np.ndarray:
    return float(values) if values.ndim == 0 else values


def sad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float | np.ndarray:
    """Sum of absolute differences over the unknown region, in thousands (alpha in [0, 1])."""
    pred, gt = _alpha_pair(pred, gt)
    region = _region_for(trimap, pred.shape)
    return _per_image(np.sum(np.abs(pred - gt) * region, axis=(-2, -1)) / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float | np.ndarray:
    """Mean squared error over the unknown region (alpha in [0, 1]); NaN when the region is empty."""
    pred, gt = _alpha_pair(pred, gt)
    region = _region_for(trimap, pred.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _per_image(np.sum((pred - gt) ** 2 * region, axis=(-2, -1)) / np.sum(region, axis=(-2, -1)))


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """DIM's `gaussgradient` 2-D kernel `g(row) * g'(col) / norm`, as its two 1-D factors."""
    epsilon = 1e-2
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-x**2 / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    derivative = -x * gauss / sigma**2
    # The 2-D kernel's L2 norm is the product of the factors' norms.
    return gauss / np.linalg.norm(gauss), derivative / np.linalg.norm(derivative)


def gradient_magnitude(alpha: np.ndarray, sigma: float = GRADIENT_SIGMA) -> np.ndarray:
    """Gaussian-derivative gradient magnitude of each min-max-normalised image (DIM `gaussgradient`)."""
    alpha = _to_alpha(alpha)
    low = alpha.min(axis=(-2, -1), keepdims=True)
    span = alpha.max(axis=(-2, -1), keepdims=True) - low
    # MATLAB's mat2gray normalises each image by its own range; a constant image has no gradient.
    normalised = np.where(span > 0, (alpha - low) / np.where(span > 0, span, 1.0), 0.0)
    smooth, derivative = _gaussian_derivative_kernels(sigma)
    images = normalised.reshape(-1, *normalised.shape[-2:])
    magnitudes = np.empty_like(images)
    for index, image in enumerate(images):
        # Correlation instead of convolution only flips the signs of the (odd) derivative.
        along_x = cv2.sepFilter2D(image, cv2.CV_64F, derivative, smooth, borderType=cv2.BORDER_REPLICATE)
        along_y = cv2.sepFilter2D(image, cv2.CV_64F, smooth, derivative, borderType=cv2.BORDER_REPLICATE)
        magnitudes[index] = np.hypot(along_x, along_y)
    return magnitudes.reshape(normalised.shape)


def gradient_error(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray,
                   sigma: float = GRADIENT_SIGMA) -> float | np.ndarray:
    """DIM Gradient error: squared difference of gradient magnitudes over the unknown region, / 1000."""
    pred, gt = _alpha_pair(pred, gt)
    region = _region_for(trimap, pred.shape)
    difference = gradient_magnitude(pred, sigma) - gradient_magnitude(gt, sigma)
    return _per_image(np.sum(difference**2 * region, axis=(-2, -1)) / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean (H, W) mask (empty when the mask is)."""
    # Labelling the transpose numbers components in column-major order, so that on equal sizes
    # argmax picks the component MATLAB's bwconncomp + max would pick.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        np.ascontiguousarray(mask.T, dtype=np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros_like(mask)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == largest).T


def _connectivity_levels(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per pixel, the last threshold before it leaves the largest region common to both alphas."""
    # Float32 thresholds against float32 alphas: a = 153 must pass 0.6 as in the reference.
    pred32, gt32 = pred.astype(np.float32), gt.astype(np.float32)
    level = np.ones_like(pred)
    still_connected = np.ones(pred.shape, dtype=bool)
    for step in range(1, CONNECTIVITY_LEVELS + 1):
        threshold = np.float32(step / CONNECTIVITY_LEVELS)
        omega = _largest_component((pred32 >= threshold) & (gt32 >= threshold))
        level[still_connected & ~omega] = (step - 1) / CONNECTIVITY_LEVELS
        still_connected &= omega
    return level


def _connectivity_phi(alpha: np.ndarray, level: np.ndarray) -> np.ndarray:
    distance = alpha - level
    return np.where(distance >= CONNECTIVITY_MIN_DISTANCE, 1.0 - distance, 1.0)


def connectivity_error(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float | np.ndarray:
    """DIM Connectivity error over the unknown region, / 1000."""
    pred, gt = _alpha_pair(pred, gt)
    region = _region_for(trimap, pred.shape)
    errors = np.empty(pred.shape[:-2])
    for index in np.ndindex(errors.shape):
        level = _connectivity_levels(pred[index], gt[index])
        difference = np.abs(_connectivity_phi(pred[index], level) - _connectivity_phi(gt[index], level))
        errors[index] = np.sum(difference * region[index]) / 1000.0
    return _per_image(errors)


def sad_whole(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """Sum of absolute differences over the whole image, in thousands (alpha in [0, 1])."""
    pred, gt = _alpha_pair(pred, gt)
    return _per_image(np.sum(np.abs(pred - gt), axis=(-2, -1)) / 1000.0)


def mse_whole(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """Mean squared error over the whole image (alpha in [0, 1])."""
    pred, gt = _alpha_pair(pred, gt)
    return _per_image(np.mean((pred - gt) ** 2, axis=(-2, -1)))


def mad_whole(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """Mean absolute difference over the whole image (alpha in [0, 1])."""
    pred, gt = _alpha_pair(pred, gt)
    return _per_image(np.mean(np.abs(pred - gt), axis=(-2, -1)))


def iou(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float | np.ndarray:
    """Intersection over union of the foregrounds `alpha > threshold`; 1 when both are empty."""
    pred, gt = _alpha_pair(pred, gt)
    pred_fg, gt_fg = pred > threshold, gt > threshold
    intersection = np.sum(pred_fg & gt_fg, axis=(-2, -1))
    union = np.sum(pred_fg | gt_fg, axis=(-2, -1))
    return _per_image(np.where(union > 0, intersection / np.maximum(union, 1), 1.0))


@dataclasses.dataclass(frozen=True)
class MattingErrors:
    """Every error of one image (floats) or of a batch (arrays of shape (B,)).

    The trimap-based DIM errors are None when no trimap was given.
    """

    sad_whole: float | np.ndarray
    mse_whole: float | np.ndarray
    mad_whole: float | np.ndarray
    iou: float | np.ndarray
    sad: float | np.ndarray | None = None
    mse: float | np.ndarray | None = None
    grad: float | np.ndarray | None = None
    conn: float | np.ndarray | None = None

    def as_dict(self) -> dict[str, float | np.ndarray | None]:
        return dataclasses.asdict(self)


def matting_errors(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None,
                   iou_threshold: float = 0.5) -> MattingErrors:
    """All errors of a prediction against its ground truth; the DIM four only with a trimap."""
    pred, gt = _alpha_pair(pred, gt)
    whole = dict(sad_whole=sad_whole(pred, gt), mse_whole=mse_whole(pred, gt),
                 mad_whole=mad_whole(pred, gt), iou=iou(pred, gt, iou_threshold))
    if trimap is None:
        return MattingErrors(**whole)
    return MattingErrors(**whole, sad=sad(pred, gt, trimap), mse=mse(pred, gt, trimap),
                         grad=gradient_error(pred, gt, trimap), conn=connectivity_error(pred, gt, trimap))
