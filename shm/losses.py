"""The losses of Semantic Human Matting, as plain functions that return their named parts.

- alpha prediction loss `L_alpha = mean(sqrt((alpha_p - alpha_g)^2 + eps))` (Charbonnier, eps = 1e-6);
- compositional loss `L_comp`: the same Charbonnier form on colours composited with the predicted and
  with the true alpha: `alpha * fg + (1 - alpha) * bg` with the true foreground and background, as
  the paper and Deep Image Matting define it, for a sample whose batch flag `has_fg_bg` is 1. A
  sample without them (a photo and its alpha only) compares `alpha * image` instead: this project's
  fallback, not the paper's (it penalises alpha errors in proportion to the photo's colours);
- trimap loss `L_t`: the cross-entropy of the T-Net's (Background, Uncertain, Foreground)
  probabilities against the one-hot true trimap;
- M-Net (stage 2): `L_p = w_alpha L_alpha + w_comp L_comp + w_raw L_raw`, each averaged over the
  band around the edges where the batch gives one (`raw_alpha_band`: the pixels that carry the
  loss, as Deep Image Matting normalises over the unknown region), `L_raw` the Charbonnier loss of
  the M-Net's raw alpha itself, which inference uses wherever the T-Net is unsure;
  end to end (stage 3): `L = w_alpha L_alpha + w_comp L_comp + w_trimap L_t` (0.5, 0.5, 0.01 in the paper).

Every function takes and returns Keras tensors (any backend), computes in float32 whatever the
inputs' dtype (mixed precision), and reduces to a scalar mean over the batch and the pixels.
The trainer in `shm.training` is the Keras wrapper: it logs each part as a metric of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from keras import ops

from shm.compositing import composite as matting_equation

CHARBONNIER_EPSILON = 1e-6
# Probabilities are clipped before the log so a confident wrong pixel costs a large, finite loss.
PROBABILITY_FLOOR = 1e-7


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the parts of the SHM loss (paper: 0.5, 0.5, 0.01)."""

    alpha: float = 0.5
    comp: float = 0.5
    trimap: float = 0.01
    raw_alpha: float = 0.5


def _float32(tensor):
    return ops.cast(tensor, "float32")


def charbonnier(prediction, target, epsilon: float = CHARBONNIER_EPSILON, mask=None):
    """`mean(sqrt((prediction - target)^2 + epsilon))` over every element, or over the pixels of
    `mask` ((B, H, W, 1) of 0/1, broadcast over channels) when given."""
    difference = _float32(prediction) - _float32(target)
    distance = ops.sqrt(ops.square(difference) + epsilon)
    if mask is None:
        return ops.mean(distance)
    mask = ops.broadcast_to(_float32(mask), ops.shape(distance))
    return ops.sum(distance * mask) / ops.maximum(ops.sum(mask), 1.0)


def alpha_prediction_loss(alpha_pred, alpha_true, epsilon: float = CHARBONNIER_EPSILON, mask=None):
    """`L_alpha`: Charbonnier distance between predicted and true alpha, (B, H, W, 1) each."""
    return charbonnier(alpha_pred, alpha_true, epsilon, mask)


def compositional_colours(alpha, image, fg, bg, has_fg_bg):
    """Colours made with `alpha`: `alpha*fg + (1-alpha)*bg` where `has_fg_bg` is 1, else `alpha*image`.

    `alpha` (B, H, W, 1); `image`, `fg`, `bg` (B, H, W, 3); `has_fg_bg` (B,) of 0/1.
    """
    alpha, image, fg, bg = (_float32(t) for t in (alpha, image, fg, bg))
    known = ops.reshape(_float32(has_fg_bg), (-1, 1, 1, 1))
    return known * matting_equation(alpha, fg, bg) + (1.0 - known) * alpha * image


def compositional_loss(alpha_pred, alpha_true, image, fg, bg, has_fg_bg,
                       epsilon: float = CHARBONNIER_EPSILON, mask=None):
    """`L_comp`: Charbonnier distance between the colours composited with predicted and true alpha."""
    return charbonnier(compositional_colours(alpha_pred, image, fg, bg, has_fg_bg),
                       compositional_colours(alpha_true, image, fg, bg, has_fg_bg), epsilon, mask)


def trimap_loss(trimap_probs, trimap_true):
    """`L_t`: mean cross-entropy of (B, H, W, 3) probabilities against a one-hot (B, H, W, 3) trimap."""
    probs = ops.clip(_float32(trimap_probs), PROBABILITY_FLOOR, 1.0)
    return ops.mean(-ops.sum(_float32(trimap_true) * ops.log(probs), axis=-1))


def matting_losses(alpha_pred, batch: Mapping, weights: LossWeights = LossWeights(), alpha_raw=None) -> dict:
    """`L_p` and its parts: `{"alpha_loss", "comp_loss", "loss"}`, and `"raw_alpha_loss"` with `alpha_raw`.

    `batch` holds `alpha`, `image`, `fg`, `bg`, `has_fg_bg` as `shm.data`'s pipelines yield them,
    and optionally `raw_alpha_band`, the pixels every part is averaged over (stage 2).
    """
    band = batch.get("raw_alpha_band")
    alpha = alpha_prediction_loss(alpha_pred, batch["alpha"], mask=band)
    comp = compositional_loss(alpha_pred, batch["alpha"], batch["image"], batch["fg"], batch["bg"],
                              batch["has_fg_bg"], mask=band)
    parts = {"alpha_loss": alpha, "comp_loss": comp, "loss": weights.alpha * alpha + weights.comp * comp}
    if alpha_raw is not None:
        parts["raw_alpha_loss"] = alpha_prediction_loss(alpha_raw, batch["alpha"], mask=band)
        parts["loss"] = parts["loss"] + weights.raw_alpha * parts["raw_alpha_loss"]
    return parts


def shm_losses(outputs: Mapping, batch: Mapping, weights: LossWeights = LossWeights()) -> dict:
    """End-to-end loss `L` and its parts: `{"alpha_loss", "comp_loss", "trimap_loss", "loss"}`.

    `outputs` is the SHM model's dict (`trimap` probabilities and fused `alpha`); `batch` as in
    `matting_losses` plus the one-hot `trimap`.
    """
    parts = matting_losses(outputs["alpha"], batch, weights)
    trimap = trimap_loss(outputs["trimap"], batch["trimap"])
    return {**parts, "trimap_loss": trimap, "loss": parts["loss"] + weights.trimap * trimap}


def tnet_losses(trimap_probs, batch: Mapping) -> dict:
    """Stage-1 loss: `{"trimap_loss", "loss"}`, the loss being `L_t` itself."""
    trimap = trimap_loss(trimap_probs, batch["trimap"])
    return {"trimap_loss": trimap, "loss": trimap}
