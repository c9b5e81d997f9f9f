"""The pure augmentation functions of shm.augment, one by one, on tiny tensors."""
import numpy as np
import pytest
import tensorflow as tf

from shm import augment
from shm.compositing import composite


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


def test_crop_and_resize_to_network_apply_the_same_window_to_all_entries():
    sample = _sample()
    cropped = augment.crop(sample, 2, 3, 5, 7)
    for key in augment.SPATIAL_KEYS:
        np.testing.assert_array_equal(cropped[key].numpy(), sample[key].numpy()[2:7, 3:10])
    resized = augment.resize_to_network(cropped, tf.constant([10, 14]))
    assert all(resized[key].shape[:2] == (10, 14) for key in augment.SPATIAL_KEYS)
    # The image is rounded to 8 bits, as inference's uint8 resize rounds it; the targets are not.
    image = resized["image"].numpy() * 255
    np.testing.assert_allclose(image, np.round(image), atol=1e-4)


def _person(height=120, width=80):
    alpha = np.zeros((height, width, 1), np.float32)
    alpha[30:110, 25:55] = 1.0  # a standing person, head at row 30, centred at column 40
    return tf.constant(alpha)


def test_view_box_is_the_whole_photo_without_zoom_reframing_or_framing():
    plain = augment.Augmentation(max_zoom=1.0, reframe_prob=0.0, framing_prob=0.0)
    for seed in range(5):
        box = [int(v) for v in augment.random_view_box(tf.constant([120, 80]), _person(), plain,
                                                       tf.constant([seed, 0]))]
        assert box == [0, 0, 120, 80]


def test_view_boxes_stay_inside_and_keep_their_aspect():
    reframed = augment.Augmentation(max_zoom=1.25, reframe_prob=1.0, framing_prob=0.0)
    aspects = set()
    for seed in range(30):
        top, left, height, width = (int(v) for v in augment.random_view_box(
            tf.constant([120, 80]), _person(), reframed, tf.constant([seed, 1])))
        assert 0 <= top and top + height <= 120 and 0 <= left and left + width <= 80
        aspect = min(augment.VIEW_ASPECTS, key=lambda a: abs(a - height / width))
        assert abs(aspect - height / width) < 0.05
        aspects.add(aspect)
    assert len(aspects) >= 4


def test_framing_views_show_the_top_of_the_person():
    framing = augment.Augmentation(max_zoom=1.0, reframe_prob=0.0, framing_prob=1.0)
    for seed in range(10):
        top, left, height, width = (int(v) for v in augment.random_view_box(
            tf.constant([120, 80]), _person(), framing, tf.constant([seed, 2])))
        assert 120 / augment.FRAMING_ZOOM[1] - 1 <= height <= 120 / augment.FRAMING_ZOOM[0] + 1
        assert top <= 30 < top + height                     # the head is in the window
        assert left <= 40 < left + width                    # and so is the person's centre


def test_box_blur_keeps_probabilities_summing_to_one():
    one_hot = tf.one_hot(tf.constant(np.random.default_rng(0).integers(0, 3, (9, 11))), 3)
    for size in (1, 3, 7):
        blurred = augment.box_blur(one_hot, tf.constant(size)).numpy()
        np.testing.assert_allclose(blurred.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(augment.box_blur(one_hot, tf.constant(1)).numpy(), one_hot.numpy())
    inner = augment.box_blur(one_hot, tf.constant(3)).numpy()[4, 5]
    np.testing.assert_allclose(inner, one_hot.numpy()[3:6, 4:7].mean((0, 1)), atol=1e-6)


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
    np.testing.assert_allclose(jitter(composite(alpha, fg, bg)),
                               composite(alpha, jitter(fg), jitter(bg)), atol=1e-5)


@pytest.mark.parametrize("seed", [[0, 0], [123, 4]])
def test_random_functions_are_reproducible(seed):
    seed = tf.constant(seed)
    first = augment.random_colour_transform(seed, 0.1, 0.2, 0.2, 0.03)
    second = augment.random_colour_transform(seed, 0.1, 0.2, 0.2, 0.03)
    np.testing.assert_array_equal(first[0], second[0])
