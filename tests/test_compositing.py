"""The matting equation and the background it composites onto: one definition each, the same
numbers on numpy arrays and TensorFlow tensors."""

import numpy as np
import pytest
import tensorflow as tf

from shm.compositing import composite, fit_background, fit_background_tf
from shm.upsampling import resize


def test_numpy_and_tensorflow_give_the_same_composite():
    rng = np.random.default_rng(0)
    alpha = rng.random((2, 5, 7, 1), np.float32)
    foreground, background = rng.random((2, 5, 7, 3), np.float32), rng.random((2, 5, 7, 3), np.float32)
    in_numpy = composite(alpha, foreground, background)
    in_tensorflow = composite(tf.constant(alpha), tf.constant(foreground), tf.constant(background)).numpy()
    np.testing.assert_array_equal(in_tensorflow, in_numpy)  # the same three float32 operations
    np.testing.assert_allclose(in_numpy, background + alpha * (foreground - background), rtol=0, atol=1e-6)


def test_opaque_and_transparent_pixels_keep_one_side_exactly():
    foreground, background = np.float32([0.2, 0.4, 0.9]), np.float32([0.7, 0.1, 0.3])
    np.testing.assert_array_equal(composite(np.float32([[1.0]]), foreground, background)[0], foreground)
    np.testing.assert_array_equal(composite(np.float32([[0.0]]), foreground, background)[0], background)


# --- fitting a background: one rule in numpy (inference's --background) and TF ops (training) ------

@pytest.mark.parametrize("background_shape, target", [((10, 40), (20, 20)), ((30, 40), (8, 30)), ((23, 17), (50, 60)),
                                                      ((101, 67), (40, 31)), ((64, 48), (64, 48))])
@pytest.mark.parametrize("position", [(0.5, 0.5), (0.0, 0.0), (1.0, 1.0), (0.3, 0.8)])
def test_numpy_and_tensorflow_fit_a_background_alike(background_shape, target, position):
    background = np.random.default_rng(0).random((*background_shape, 3), dtype=np.float32)
    in_numpy = fit_background(background, *target, position)
    in_tensorflow = fit_background_tf(tf.constant(background), *target, tf.constant(position)).numpy()
    assert in_numpy.shape == in_tensorflow.shape == (*target, 3)
    # The same window of the same resize (shm.upsampling.resize and its TF twin: float32 sums in another
    # order); a window one pixel off would differ by ~0.1 on this noise.
    np.testing.assert_allclose(in_tensorflow, in_numpy, atol=1e-4)


def test_a_background_is_scaled_to_cover_then_cropped_at_the_position():
    background = np.random.default_rng(1).integers(0, 256, (10, 40, 3), dtype=np.uint8)
    scaled = resize(background, 20, 80)  # twice as large: the height covers 20, the width has 60 to spare
    np.testing.assert_array_equal(fit_background(background, 20, 20), scaled[:, 30:50])  # centred by default
    np.testing.assert_array_equal(fit_background(background, 20, 20, (0.0, 0.0)), scaled[:, :20])
    np.testing.assert_array_equal(fit_background(background, 20, 20, (1.0, 1.0)), scaled[:, 60:])
    # An odd room puts the centre's extra pixel after the window.
    np.testing.assert_array_equal(fit_background(background, 20, 21), scaled[:, 29:50])
    colour = np.array([1, 2, 3], np.uint8)
    assert fit_background(colour, 20, 20) is colour


def test_a_fitted_background_shows_the_photo_content_only():
    background = tf.concat([tf.zeros([20, 10, 3]), tf.ones([20, 10, 3])], axis=1)  # 20 x 20, half dark
    out = fit_background_tf(background, tf.constant(8), tf.constant(30), tf.constant([0.2, 0.7]))
    assert out.shape == (8, 30, 3)
    # Scaled to 30 x 30 to cover the width: both halves remain visible, nothing else appears.
    assert out.numpy().min() == 0.0 and out.numpy().max() == 1.0
