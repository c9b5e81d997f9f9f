"""The pure augmentation functions of shm.augment, one by one, on tiny tensors."""
import numpy as np
import pytest
import tensorflow as tf

from shm import augment


def _sample(height=12, width=16, seed=0):
    rng = np.random.default_rng(seed)
    alpha = np.zeros((height, width, 1), np.float32)
    alpha[:, : width // 3] = 1.0
    alpha[:, width // 3: width // 2] = 0.5
    return {
        "image": tf.constant(rng.random((height, width, 3)), tf.float32),
        "alpha": tf.constant(alpha),
        "fg": tf.constant(rng.random((height, width, 3)), tf.float32),
        "bg": tf.constant(rng.random((height, width, 3)), tf.float32),
        "has_fg_bg": tf.constant(1.0),
    }


def test_flip_moves_every_spatial_entry_together_and_keeps_scalars():
    sample = _sample()
    flipped = augment.flip_left_right(sample)
    for key in augment.SPATIAL_KEYS:
        np.testing.assert_array_equal(flipped[key].numpy(), sample[key].numpy()[:, ::-1])
    assert float(flipped["has_fg_bg"]) == 1.0
    # Foreground was on the left; after the flip it is on the right, in the image's frame too.
    assert flipped["alpha"].numpy()[:, -1].min() == 1.0


def test_random_flip_flips_all_or_nothing_reproducibly():
    sample = _sample()
    outcomes = set()
    for seed in range(8):
        out = augment.random_flip(sample, tf.constant([seed, 3]))
        again = augment.random_flip(sample, tf.constant([seed, 3]))
        np.testing.assert_array_equal(out["image"].numpy(), again["image"].numpy())
        image_flipped = np.array_equal(out["image"].numpy(), sample["image"].numpy()[:, ::-1])
        alpha_flipped = np.array_equal(out["alpha"].numpy(), sample["alpha"].numpy()[:, ::-1])
        fg_flipped = np.array_equal(out["fg"].numpy(), sample["fg"].numpy()[:, ::-1])
        assert image_flipped == alpha_flipped == fg_flipped
        outcomes.add(image_flipped)
    assert outcomes == {True, False}


def test_crop_and_resize_apply_the_same_window_to_all_entries():
    sample = _sample()
    cropped = augment.crop(sample, 2, 3, 5, 7)
    for key in augment.SPATIAL_KEYS:
        np.testing.assert_array_equal(cropped[key].numpy(), sample[key].numpy()[2:7, 3:10])
    resized = augment.resize(cropped, 10, 14)
    assert all(resized[key].shape[:2] == (10, 14) for key in augment.SPATIAL_KEYS)


def test_random_scale_box_stays_inside_with_jittered_size():
    hw = tf.constant([40, 60])
    sizes = set()
    for seed in range(20):
        top, left, height, width = (int(v) for v in augment.random_scale_box(hw, 0.5, tf.constant([seed, 0])))
        assert 0 <= top and top + height <= 40 and 0 <= left and left + width <= 60
        assert 20 <= height <= 40 and 30 <= width <= 60
        assert abs(height / 40 - width / 60) < 0.05  # one factor for both sides
        sizes.add(height)
    assert len(sizes) > 3


def test_unknown_centred_box_contains_an_unknown_pixel_and_stays_inside():
    unknown = np.zeros((50, 70), bool)
    unknown[40:42, 60:63] = True  # near a corner: the window must shift to fit
    for seed in range(10):
        top, left, height, width = (int(v) for v in augment.unknown_centred_box(
            tf.constant(unknown), 32, tf.constant([seed, 1])))
        assert (height, width) == (32, 32)
        assert 0 <= top <= 50 - 32 and 0 <= left <= 70 - 32
        assert unknown[top:top + height, left:left + width].any()


def test_unknown_centred_box_clamps_side_and_falls_back_to_centre():
    top, left, height, width = (int(v) for v in augment.unknown_centred_box(
        tf.zeros((30, 50), bool), 64, tf.constant([0, 0])))
    assert (height, width) == (30, 30)
    assert (top, left) == (0, 10)


def test_composite_identities():
    fg, bg = tf.fill([4, 4, 3], 0.8), tf.fill([4, 4, 3], 0.2)
    np.testing.assert_allclose(augment.composite(tf.ones([4, 4, 1]), fg, bg), fg)
    np.testing.assert_allclose(augment.composite(tf.zeros([4, 4, 1]), fg, bg), bg)
    np.testing.assert_allclose(augment.composite(tf.fill([4, 4, 1], 0.25), fg, bg), tf.fill([4, 4, 3], 0.35),
                               atol=1e-6)


def test_fit_background_covers_the_target_with_the_photo_content():
    background = tf.concat([tf.zeros([20, 10, 3]), tf.ones([20, 10, 3])], axis=1)  # 20 x 20, half dark
    out = augment.fit_background(background, 8, 30, tf.constant([1, 2]))
    assert out.shape == (8, 30, 3)
    # Scaled to 30 x 30 to cover the width: both halves remain visible, nothing else appears.
    assert out.numpy().min() == 0.0 and out.numpy().max() == 1.0


def test_colour_transform_without_strength_is_identity():
    matrix, offset = augment.random_colour_transform(tf.constant([5, 5]), 0.0, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(matrix, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(offset, np.zeros(3), atol=1e-6)


def test_hue_and_saturation_keep_grey_grey():
    matrix, offset = augment.random_colour_transform(tf.constant([7, 1]), 0.0, 0.0, 0.5, 0.25)
    grey = tf.fill([2, 2, 3], 0.4)
    np.testing.assert_allclose(augment.apply_colour_transform(grey, matrix, offset), grey, atol=1e-5)
    red = tf.constant([[[0.6, 0.3, 0.3]]])
    assert not np.allclose(augment.apply_colour_transform(red, matrix, offset), red, atol=1e-3)


def test_colour_transform_commutes_with_compositing():
    sample = _sample()
    # Mid-range colours so that no clipping happens.
    fg, bg = 0.3 + 0.4 * sample["fg"], 0.3 + 0.4 * sample["bg"]
    alpha = sample["alpha"]
    matrix, offset = augment.random_colour_transform(tf.constant([3, 9]), 0.05, 0.1, 0.1, 0.02)
    jitter = lambda x: augment.apply_colour_transform(x, matrix, offset)  # noqa: E731
    np.testing.assert_allclose(jitter(augment.composite(alpha, fg, bg)),
                               augment.composite(alpha, jitter(fg), jitter(bg)), atol=1e-5)


@pytest.mark.parametrize("seed", [[0, 0], [123, 4]])
def test_random_functions_are_reproducible(seed):
    seed = tf.constant(seed)
    first = augment.random_colour_transform(seed, 0.1, 0.2, 0.2, 0.03)
    second = augment.random_colour_transform(seed, 0.1, 0.2, 0.2, 0.03)
    np.testing.assert_array_equal(first[0], second[0])
    background = tf.random.stateless_uniform([30, 40, 3], [1, 1])
    np.testing.assert_array_equal(augment.fit_background(background, 10, 10, seed),
                                  augment.fit_background(background, 10, 10, seed))
