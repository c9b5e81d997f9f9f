"""The matting equation: one definition, the same numbers on numpy arrays and TensorFlow tensors."""

import numpy as np
import tensorflow as tf

from shm.compositing import composite


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
