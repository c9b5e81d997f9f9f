"""Guided upsampling of alpha, foreground colour estimation and compositing (tiny synthetic images)."""

import cv2
import numpy as np
import pytest

import shm.io
from shm.foreground import composite_uint8, estimate_foreground
from shm.upsampling import RowUpsampler, guided_filter_coefficients, guided_upsample, resize, resize_tf


def edge_scene(height=64, width=64, edge=37):
    """A photo with a sharp vertical edge (not on the 4x grid), its true alpha, and a 4x-smaller alpha."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :edge] = (220, 180, 150)
    image[:, edge:] = (30, 60, 90)
    alpha = np.zeros((height, width), np.float32)
    alpha[:, :edge] = 1.0
    alpha_low = cv2.resize(alpha, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
    return image, alpha, alpha_low


def test_guided_upsampling_follows_a_sharp_edge_better_than_bilinear():
    image, alpha, alpha_low = edge_scene()
    bilinear = resize(alpha_low, *alpha.shape)
    guided = guided_upsample(alpha_low, image)
    assert guided.shape == alpha.shape and guided.dtype == np.float32
    guided_error = np.abs(guided - alpha).mean()
    bilinear_error = np.abs(bilinear - alpha).mean()
    assert guided_error < 0.5 * bilinear_error
    # The step stays where the photo's edge is: a full step between the two pixels around it.
    assert guided[:, 36].mean() > 0.9 and guided[:, 37].mean() < 0.1


def test_guided_upsampling_keeps_range_and_handles_any_ratio():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (45, 101, 3), dtype=np.uint8)
    alpha_low = rng.random((32, 64)).astype(np.float32)
    for target in [(45, 101), (7, 3), (1, 1)]:
        out = guided_upsample(alpha_low, cv2.resize(image, target[::-1]))
        assert out.shape == target
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_guided_filter_reproduces_a_source_linear_in_the_guide():
    # q = A . I + b is exact when the source is itself a linear function of the guide.
    rng = np.random.default_rng(1)
    guide = rng.random((24, 24, 3)).astype(np.float32)
    source = guide @ np.array([0.2, -0.5, 0.7], np.float32) + 0.1
    coefficient, offset = guided_filter_coefficients(guide, source, radius=2, eps=1e-8)
    filtered = np.einsum("hwc,hwc->hw", coefficient, guide) + offset
    np.testing.assert_allclose(filtered, source, atol=2e-3)


def reference_coefficients(guide, source, radius, eps):
    """The guided filter's (A, b) as He et al. write it: a float64 3x3 solve per window."""
    guide, source = guide.astype(np.float64), source.astype(np.float64)
    size = (2 * radius + 1,) * 2

    def mean(array):
        return cv2.blur(array, size, borderType=cv2.BORDER_REFLECT)

    mean_guide, mean_source = mean(guide), mean(source)
    covariance = mean(guide * source[..., None]) - mean_guide * mean_source[..., None]
    sigma = np.stack([np.stack([mean(guide[..., i] * guide[..., j]) - mean_guide[..., i] * mean_guide[..., j]
                                for j in range(3)], axis=-1) for i in range(3)], axis=-2) + eps * np.eye(3)
    coefficient = np.linalg.solve(sigma, covariance[..., None])[..., 0]
    offset = mean_source - np.einsum("hwc,hwc->hw", coefficient, mean_guide)
    return mean(coefficient), mean(offset)


@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_closed_form_inverse_matches_a_float64_solve_on_a_real_photo(eps):
    # Flat patches make near-singular windows: with eps 1e-5 a float32 inverse was off by hundreds.
    from skimage import data

    guide = cv2.resize(data.astronaut(), (64, 48), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    source = np.random.default_rng(3).random((48, 64)).astype(np.float32)
    coefficient, offset = guided_filter_coefficients(guide, source, radius=1, eps=eps)
    expected_coefficient, expected_offset = reference_coefficients(guide, source, 1, eps)
    assert coefficient.dtype == offset.dtype == np.float32
    np.testing.assert_allclose(coefficient, expected_coefficient, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(offset, expected_offset, rtol=1e-4, atol=1e-4)


def semi_transparent_scene(size=200, soft_width=8):
    """Red over blue with a soft vertical band `soft_width` px wide, plus a little noise."""
    rng = np.random.default_rng(2)
    foreground = np.zeros((size, size, 3), np.float32)
    foreground[...] = (0.9, 0.2, 0.1)
    background = np.zeros_like(foreground)
    background[...] = (0.1, 0.3, 0.9)
    ramp = np.clip((np.arange(size) - size / 2) / soft_width, 0, 1).astype(np.float32)
    alpha = np.tile(1.0 - ramp, (size, 1))
    image = alpha[..., None] * foreground + (1 - alpha[..., None]) * background
    image += rng.normal(0, 0.005, image.shape).astype(np.float32)
    return np.clip(image, 0, 1), foreground, alpha


@pytest.mark.parametrize("blur_size, max_error_ratio", [(None, 0.6), (30, 0.2)])
def test_estimated_foreground_removes_the_old_background_from_soft_pixels(blur_size, max_error_ratio):
    image, foreground, alpha = semi_transparent_scene()
    estimate = estimate_foreground(image, alpha, blur_size)
    assert estimate.shape == image.shape and estimate.min() >= 0 and estimate.max() <= 1
    soft = (alpha > 0.1) & (alpha < 0.9)
    estimate_error = np.abs(estimate - foreground)[soft].mean()
    naive_error = np.abs(image - foreground)[soft].mean()  # the old colours, as image x alpha keeps
    assert estimate_error < max_error_ratio * naive_error
    opaque = alpha == 1
    np.testing.assert_allclose(estimate[opaque], image[opaque], atol=0.02)


def reference_blur_fusion(image, alpha, blur_size):
    """The authors' "blur fusion x2" (github.com/Photoroom/fast-foreground-estimation), verbatim maths."""
    def step(foreground, background, size):
        blur = lambda array: cv2.blur(array, (size, size), borderType=cv2.BORDER_REFLECT)
        a = alpha[..., None]
        blurred_alpha = blur(alpha)[..., None]
        mean_foreground = blur(foreground * a) / (blurred_alpha + 1e-5)
        mean_background = blur(background * (1 - a)) / (1 - blurred_alpha + 1e-5)
        fused = mean_foreground + a * (image - a * mean_foreground - (1 - a) * mean_background)
        return np.clip(fused, 0, 1), mean_background

    foreground, background = step(image, image, blur_size)
    return step(foreground, background, 6)[0]


def smooth_random_alpha(height, width, seed):
    noise = np.random.default_rng(seed).random((height // 16 + 1, width // 16 + 1)).astype(np.float32)
    return np.clip(cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)


@pytest.mark.parametrize("scene", ["mostly_opaque", "all_soft", "large"])
def test_estimate_foreground_matches_the_reference_algorithm(scene):
    if scene == "mostly_opaque":
        image, _, alpha = semi_transparent_scene()
    else:
        height, width = (900, 1200) if scene == "large" else (90, 120)
        image = np.random.default_rng(5).random((height, width, 3)).astype(np.float32)
        alpha = np.clip(smooth_random_alpha(height, width, seed=6) * 0.9 + 0.05, 0, 1)
    blur_size = max(3, round(0.045 * max(alpha.shape)))
    expected = reference_blur_fusion(image, alpha, blur_size)
    estimate = estimate_foreground(image, alpha)
    visible = alpha > 1 / 255
    error = np.abs(estimate - expected)[visible]
    if scene == "large":  # the first pass's means come from a shrunk copy: close, not equal
        assert error.mean() < 0.002
    else:
        assert error.max() < 1e-3


def test_estimate_foreground_accepts_uint8():
    image, _, alpha = semi_transparent_scene(32)
    from_uint8 = estimate_foreground((image * 255).round().astype(np.uint8), alpha)
    np.testing.assert_allclose(from_uint8, estimate_foreground(image, alpha), atol=0.01)


@pytest.mark.parametrize("background", [np.array([0, 255, 0], np.uint8),
                                        np.full((4, 5, 3), 255, np.uint8)])
def test_composite_blends_by_alpha(background):
    foreground = np.zeros((4, 5, 3), np.float32)
    alpha = np.array([[0.0, 0.25, 0.5, 1.0, 1.0]] * 4, np.float32)
    out = composite_uint8(foreground, alpha, background)
    assert out.dtype == np.uint8 and out.shape == (4, 5, 3)
    expected = np.rint((1 - alpha)[..., None] * np.broadcast_to(background, (4, 5, 3)).astype(np.float32))
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


@pytest.mark.parametrize("shape, size", [((800, 550), (320, 224)), ((877, 550), (320, 192)),
                                         ((100, 70), (320, 224)), ((31, 17), (64, 32))])
def test_resize_and_its_tensorflow_twin_give_the_same_pixels(shape, size):
    import tensorflow as tf

    image = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
    twin = resize_tf(tf.constant(image), tf.constant(size)).numpy()
    np.testing.assert_allclose(twin, resize(image, *size), atol=1e-4)  # float32 sums in another order
    # One channel (training's alpha) keeps its channel axis in both.
    twin = resize_tf(tf.constant(image[..., :1]), tf.constant(size)).numpy()
    np.testing.assert_allclose(twin, resize(image[..., :1], *size), atol=1e-4)
    # On 8-bit photos both round to the same levels but for sums that fall on a rounding tie.
    photo = (image * 255).astype(np.uint8)
    twin = tf.round(resize_tf(tf.constant(photo, tf.float32), tf.constant(size))).numpy()
    difference = np.abs(twin - resize(photo, *size))
    assert difference.max() <= 1 and difference.mean() < 0.01


@pytest.mark.parametrize("low_shape, size", [((32, 64, 4), (100, 333)), ((10, 10), (1000, 997)),
                                             ((5, 7, 3), (400, 9)), ((32, 64), (20, 300)), ((8, 8, 3), (8, 8))])
def test_row_upsampler_gives_the_whole_resize_band_by_band(low_shape, size):
    low = np.random.default_rng(2).random(low_shape).astype(np.float32)
    upsampler = RowUpsampler(low, *size)
    bands = np.concatenate([upsampler.rows(start, min(start + 13, size[0])) for start in range(0, size[0], 13)])
    np.testing.assert_allclose(bands, resize(low, *size), rtol=0, atol=1e-6)


def test_full_resolution_steps_give_the_same_result_in_any_bands(monkeypatch):
    height, width = 700, 530  # larger than MEANS_SIZE: the shrunk first pass is banded too
    image = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha_low = smooth_random_alpha(96, 72, seed=8)
    whole = {}
    for band_rows in (10_000, 7):  # one band, then bands of 7 rows (halo and edges everywhere)
        monkeypatch.setattr(shm.io, "BAND_ROWS", band_rows)
        alpha = guided_upsample(alpha_low, image)
        results = {"alpha": alpha, "foreground": estimate_foreground(image, alpha),
                   "composite": composite_uint8(image, alpha, np.array([0, 255, 0], np.uint8)).astype(np.float32)}
        whole = whole or results
    for name, result in results.items():
        np.testing.assert_allclose(result, whole[name], rtol=0, atol=1e-5 if name != "composite" else 1, err_msg=name)


def test_clamp_sets_the_margins_to_0_and_1_and_stretches_the_rest_continuously():
    from shm.upsampling import clamp_alpha

    alpha = np.array([[0.0, 0.03, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0]], np.float32)
    clamped = clamp_alpha(alpha.copy(), 0.05)
    np.testing.assert_allclose(clamped, [[0, 0, 0, 0.05 / 0.9, 0.5, 0.85 / 0.9, 1, 1, 1]], atol=1e-6)
    ramp = np.linspace(0, 1, 10001, dtype=np.float32)[None]
    steps = np.diff(clamp_alpha(ramp.copy(), 0.05))
    assert steps.min() >= 0 and steps.max() < 1.2e-4  # monotonic, no jump at the margins
    np.testing.assert_array_equal(clamp_alpha(alpha.copy(), 0.0), alpha)
    tall = np.random.default_rng(0).random((700, 3), np.float32)  # more rows than one band
    np.testing.assert_allclose(clamp_alpha(tall.copy(), 0.1), np.clip((tall - 0.1) / 0.8, 0, 1), atol=1e-6)
    for margin in (-0.1, 0.5):
        with pytest.raises(ValueError, match="margin must be in"):
            clamp_alpha(alpha.copy(), margin)


def test_clamp_flag_refuses_unusable_margins():
    import argparse

    from shm.upsampling import clamp_margin

    assert clamp_margin("0") == 0.0 and clamp_margin("0.05") == 0.05
    for text in ("0.5", "-1", "haze"):
        with pytest.raises(argparse.ArgumentTypeError):
            clamp_margin(text)
