"""The SHM losses against values computed by hand on tiny tensors."""

import math

import numpy as np
import pytest
from keras import ops

from shm import losses

EPS = losses.CHARBONNIER_EPSILON


def _alpha(*values):
    """A (1, 1, N, 1) alpha tensor: one image, one row of N pixels."""
    return np.asarray(values, dtype=np.float32).reshape(1, 1, -1, 1)


def _value(tensor):
    return float(ops.convert_to_numpy(tensor))


def test_alpha_prediction_loss_is_the_charbonnier_mean():
    loss = losses.alpha_prediction_loss(_alpha(0.0, 1.0), _alpha(0.0, 0.0))
    assert _value(loss) == pytest.approx((math.sqrt(EPS) + math.sqrt(1.0 + EPS)) / 2, rel=1e-6)


def _colours(rgb, pixels=2):
    return np.tile(np.asarray(rgb, np.float32), (1, 1, pixels, 1))


def test_compositional_loss_uses_true_fg_and_bg_when_the_sample_has_them():
    red, blue = _colours((1, 0, 0)), _colours((0, 0, 1))
    # alpha 0.25 vs 0.75 on pixel 1 composites (0.25, 0, 0.75) vs (0.75, 0, 0.25); pixel 2 is equal.
    loss = losses.compositional_loss(_alpha(0.25, 1.0), _alpha(0.75, 1.0), image=np.zeros_like(red),
                                     fg=red, bg=blue, has_fg_bg=np.ones(1, np.float32))
    per_element = [math.sqrt(0.25 + EPS), math.sqrt(EPS), math.sqrt(0.25 + EPS)] + [math.sqrt(EPS)] * 3
    assert _value(loss) == pytest.approx(np.mean(per_element), rel=1e-6)


def test_compositional_loss_compares_alpha_times_image_without_fg_and_bg():
    grey = _colours((0.5, 0.5, 0.5))
    unused = np.full_like(grey, 7.0)  # fg/bg must be ignored when has_fg_bg is 0
    loss = losses.compositional_loss(_alpha(0.25, 1.0), _alpha(0.75, 1.0), image=grey, fg=unused, bg=unused,
                                     has_fg_bg=np.zeros(1, np.float32))
    assert _value(loss) == pytest.approx((math.sqrt(0.0625 + EPS) + math.sqrt(EPS)) / 2, rel=1e-6)


def test_composite_chooses_per_sample():
    alpha = np.full((2, 1, 1, 1), 0.5, np.float32)
    image = np.full((2, 1, 1, 3), 0.2, np.float32)
    fg, bg = np.ones((2, 1, 1, 3), np.float32), np.zeros((2, 1, 1, 3), np.float32)
    result = ops.convert_to_numpy(losses.compositional_colours(alpha, image, fg, bg, np.array([1.0, 0.0], np.float32)))
    np.testing.assert_allclose(result[0, 0, 0], [0.5, 0.5, 0.5])  # 0.5 * fg + 0.5 * bg
    np.testing.assert_allclose(result[1, 0, 0], [0.1, 0.1, 0.1])  # 0.5 * image


def test_trimap_loss_is_the_mean_cross_entropy():
    probs = np.array([[[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]]], np.float32)
    truth = np.array([[[[1, 0, 0], [0, 0, 1]]]], np.float32)
    assert _value(losses.trimap_loss(probs, truth)) == pytest.approx((-math.log(0.7) - math.log(0.6)) / 2, rel=1e-6)


def test_trimap_loss_stays_finite_for_a_zero_probability():
    probs = np.array([[[[1.0, 0.0, 0.0]]]], np.float32)
    truth = np.array([[[[0, 0, 1]]]], np.float32)
    assert _value(losses.trimap_loss(probs, truth)) == pytest.approx(-math.log(losses.PROBABILITY_FLOOR), rel=1e-5)


def _batch():
    image = _colours((0.5, 0.5, 0.5))
    return {"alpha": _alpha(0.75, 1.0), "image": image, "fg": image, "bg": image,
            "has_fg_bg": np.zeros(1, np.float32),
            "trimap": np.array([[[[0, 1, 0], [0, 0, 1]]]], np.float32)}


def test_shm_losses_weight_each_named_part():
    outputs = {"alpha": _alpha(0.25, 1.0), "trimap": np.array([[[[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]]], np.float32)}
    weights = losses.LossWeights(alpha=0.3, comp=0.6, trimap=0.1)
    parts = {name: _value(value) for name, value in losses.shm_losses(outputs, _batch(), weights).items()}
    assert set(parts) == {"alpha_loss", "comp_loss", "trimap_loss", "loss"}
    assert parts["alpha_loss"] == pytest.approx((math.sqrt(0.25 + EPS) + math.sqrt(EPS)) / 2, rel=1e-6)
    assert parts["comp_loss"] == pytest.approx((math.sqrt(0.0625 + EPS) + math.sqrt(EPS)) / 2, rel=1e-6)
    assert parts["trimap_loss"] == pytest.approx((-math.log(0.5) - math.log(0.8)) / 2, rel=1e-6)
    assert parts["loss"] == pytest.approx(0.3 * parts["alpha_loss"] + 0.6 * parts["comp_loss"]
                                          + 0.1 * parts["trimap_loss"], rel=1e-6)


def test_default_weights_are_the_papers():
    assert losses.LossWeights() == losses.LossWeights(alpha=0.5, comp=0.5, trimap=0.01)
    parts = losses.matting_losses(_alpha(0.25, 1.0), _batch())
    assert set(parts) == {"alpha_loss", "comp_loss", "loss"}
    assert _value(parts["loss"]) == pytest.approx(0.5 * _value(parts["alpha_loss"]) + 0.5 * _value(parts["comp_loss"]))


def test_half_precision_inputs_give_float32_losses():
    parts = losses.tnet_losses(np.array([[[[0.7, 0.2, 0.1]]]], np.float16), {"trimap": np.array([[[[1, 0, 0]]]])})
    assert ops.convert_to_numpy(parts["loss"]).dtype == np.float32
    assert _value(parts["trimap_loss"]) == pytest.approx(-math.log(0.7), rel=1e-3)
    alpha_loss = losses.alpha_prediction_loss(_alpha(0.0, 1.0).astype(np.float16), _alpha(0.0, 0.0))
    assert ops.convert_to_numpy(alpha_loss).dtype == np.float32


def test_stage_2_losses_average_over_the_band_and_include_the_raw_alpha():
    alpha_true = np.zeros((1, 4, 4, 1), np.float32)
    alpha_pred = alpha_true.copy()
    alpha_pred[0, 0, 0, 0] = 1.0                       # one wrong pixel, inside the band
    band = np.zeros_like(alpha_true)
    band[0, :2, :2] = 1.0                              # 4 band pixels
    image = np.full((1, 4, 4, 3), 0.5, np.float32)
    batch = {"alpha": alpha_true, "image": image, "fg": image, "bg": image * 0, "has_fg_bg": np.ones(1, np.float32),
             "raw_alpha_band": band}
    eps = losses.CHARBONNIER_EPSILON
    parts = {k: float(v) for k, v in losses.matting_losses(alpha_pred, batch, alpha_raw=alpha_pred).items()}
    expected_alpha = (np.sqrt(1 + eps) + 3 * np.sqrt(eps)) / 4   # over the 4 band pixels, not all 16
    assert parts["alpha_loss"] == pytest.approx(expected_alpha, rel=1e-5)
    assert parts["raw_alpha_loss"] == pytest.approx(expected_alpha, rel=1e-5)
    weights = losses.LossWeights()
    assert parts["loss"] == pytest.approx(weights.alpha * parts["alpha_loss"] + weights.comp * parts["comp_loss"]
                                          + weights.raw_alpha * parts["raw_alpha_loss"], rel=1e-6)
    whole = losses.matting_losses(alpha_pred, {k: v for k, v in batch.items() if k != "raw_alpha_band"})
    assert "raw_alpha_loss" not in whole
    assert float(whole["alpha_loss"]) == pytest.approx((np.sqrt(1 + eps) + 15 * np.sqrt(eps)) / 16, rel=1e-5)
