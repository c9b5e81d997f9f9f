"""The pure augmentation functions of shm.augment, one by one, on tiny tensors."""
import dataclasses

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


def test_augmentation_with_changes_only_the_named_fields():
    changed = augment.augmentation_with(["framing_prob=0", "flip=false", "trimap_blur_px=5", "max_zoom=1.5"])
    assert changed == dataclasses.replace(augment.Augmentation(), framing_prob=0.0, flip=False, trimap_blur_px=5,
                                          max_zoom=1.5)
    assert augment.augmentation_with([]) == augment.Augmentation()
    assert augment.augmentation_with(["flip=1"]).flip is True


@pytest.mark.parametrize("change, message", [
    ("framing=0", "FIELD one of flip, "), ("group_prob", "got 'group_prob'"),
    ("flip=maybe", "flip takes true or false"), ("trimap_blur_px=2.5", "trimap_blur_px takes a whole number"),
    ("group_prob=1.5", "group_prob must be in \\[0, 1\\]"), ("hue=-0.1", "hue must be at least 0"),
])
def test_augmentation_with_refuses_unknown_fields_and_unusable_values(change, message):
    with pytest.raises(ValueError, match=message):
        augment.augmentation_with([change])


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


# ---------------------------------------------------------------------------------------------
# Group views

def _disc(height, width, centre, radius):
    """A soft disc (H, W, 1): 1 inside, a 2-pixel ramp, 0 outside."""
    yy, xx = np.mgrid[:height, :width]
    return np.clip((radius - np.hypot(yy - centre[0], xx - centre[1])) / 2, 0, 1)[..., None].astype(np.float32)


def test_person_box_is_the_box_above_the_threshold_or_the_whole_image():
    alpha = np.zeros((10, 12, 1), np.float32)
    alpha[2:7, 3:5] = 1.0
    alpha[8, 9] = 0.005  # below the threshold: not part of the person
    np.testing.assert_array_equal(augment.person_box(tf.constant(alpha), 0.01), [2, 3, 7, 5])
    np.testing.assert_array_equal(augment.person_box(tf.zeros([10, 12, 1]), 0.01), [0, 0, 10, 12])


def test_box_in_view_maps_a_photo_box_through_the_crop_and_resize():
    box = tf.constant([10, 20, 50, 40])
    # Window (top 10, left 0, 40 x 80) of the photo seen at 20 x 20: y halved, x quartered.
    np.testing.assert_allclose(augment.box_in_view(box, 10, 0, 40, 80, tf.constant([20, 20])), [0, 5, 20, 10])


@pytest.mark.parametrize("top, left", [(2, 3), (-2, -3), (5, 6), (-4, 9), (7, 8), (40, 3)])
def test_paste_places_and_cuts_like_a_canvas(top, left):
    layers = np.arange(4 * 5 * 2, dtype=np.float32).reshape(4, 5, 2) + 1
    canvas = np.zeros((8 + 20, 9 + 20, 2), np.float32)  # a margin of 10 around the 8 x 9 view
    if -10 <= top <= 18 and -10 <= left <= 18:
        canvas[10 + top:14 + top, 10 + left:15 + left] = layers
    pasted = augment.paste(tf.constant(layers), tf.constant(top), tf.constant(left), tf.constant([8, 9]))
    np.testing.assert_array_equal(pasted.numpy(), canvas[10:18, 10:19])


def _group_sample(seed=0):
    rng = np.random.default_rng(seed)
    alpha = _disc(16, 20, (8, 7), 5)
    fg, bg = rng.random((16, 20, 3), np.float32), rng.random((16, 20, 3), np.float32)
    return {"image": tf.constant(composite(alpha, fg, bg)), "alpha": tf.constant(alpha), "fg": tf.constant(fg),
            "bg": tf.constant(bg), "has_fg_bg": tf.constant(1.0)}


@pytest.mark.parametrize("in_front", [True, False])
def test_add_person_is_the_union_and_exactly_composite_consistent(in_front):
    sample = _group_sample()
    alpha = _disc(16, 20, (9, 12), 5)  # overlaps the first person in part
    fg = np.random.default_rng(1).random((16, 20, 3), np.float32)
    out = {k: v.numpy() for k, v in augment.add_person(sample, tf.constant(alpha), tf.constant(fg),
                                                        tf.constant(in_front)).items()}
    own_alpha, own_fg, bg = (sample[k].numpy() for k in ("alpha", "fg", "bg"))
    (front_a, front_f), (back_a, back_f) = ((alpha, fg), (own_alpha, own_fg))[::1 if in_front else -1]
    np.testing.assert_allclose(out["alpha"], front_a + back_a * (1 - front_a), atol=1e-6)
    # The image is the back person over the background, the front person over that.
    np.testing.assert_allclose(out["image"], composite(front_a, front_f, composite(back_a, back_f, bg)), atol=1e-5)
    person = out["alpha"][..., 0] > 0
    np.testing.assert_allclose(composite(out["alpha"], out["fg"], bg)[person], out["image"][person], atol=1e-5)
    # Where the front person is opaque its colour shows; where nobody is, the sample's fg stays.
    opaque = front_a[..., 0] == 1
    np.testing.assert_allclose(out["fg"][opaque], front_f[opaque], atol=1e-6)
    np.testing.assert_array_equal(out["fg"][~person], own_fg[~person])
    assert out["alpha"].sum() > own_alpha.sum() + 10


def _placed(cut, first, view_hw=(40, 60), seed=(0, 0), layers_hw=(20, 8)):
    layers = np.ones((*layers_hw, 1), np.float32)
    placed = augment.place_beside(tf.constant(layers), tf.constant(cut), tf.constant(first, tf.float32),
                                  tf.constant(view_hw), tf.constant(seed))
    assert placed.shape == (*view_hw, 1)
    return placed.numpy()[..., 0]


@pytest.mark.parametrize("seed", [(s, 1) for s in range(12)])
def test_place_beside_scales_to_the_first_person_and_overlaps_at_most_partly(seed):
    first = (10.0, 25.0, 40.0, 35.0)  # 30 tall, 10 wide, its feet on the view's bottom
    placed = _placed([False] * 4, first, seed=seed)
    rows, columns = np.flatnonzero(placed.any(1)), np.flatnonzero(placed.any(0))
    assert placed.sum() > 0
    height = rows[-1] + 1 - rows[0]
    if rows[-1] + 1 < 40:  # not cut by the view's bottom
        assert 0.8 * 30 - 1 <= height <= 1.2 * 30 + 1
        assert abs(rows[-1] + 1 - 40) <= 0.1 * 30 + 1  # feet near the first person's
    centre, width = (columns[0] + columns[-1] + 1) / 2, columns[-1] + 1 - columns[0]
    inside_view = 0 < columns[0] and columns[-1] < 59
    if inside_view:
        assert abs(centre - 30) >= 0.5 * (10 + width) / 2 - 1  # at most half of the mean width overlaps


def test_place_beside_keeps_a_cut_off_edge_at_the_edge_of_the_view():
    first = (5.0, 10.0, 25.0, 20.0)  # a person standing high in the view, far from its bottom
    for seed in range(8):
        # A half-body portrait, cut off at its photo's bottom: its cut stays on the view's bottom.
        placed = _placed([False, False, True, False], first, seed=(seed, 2))
        assert placed[-1].any()
        # Cut off at its left: the cut lies on the view's left edge.
        placed = _placed([False, True, False, False], first, seed=(seed, 2))
        assert placed[:, 0].any()


def test_place_beside_moves_to_the_other_side_when_one_side_is_outside_the_view():
    # The first person (centre 5, 10 wide) stands at the left edge of the view: the second always
    # lands right of it, never half outside the view on the left.
    for seed in range(10):
        placed = _placed([False] * 4, (10.0, 0.0, 40.0, 10.0), seed=(seed, 3))
        columns = np.flatnonzero(placed.any(0))
        width = columns[-1] + 1 - columns[0]
        assert columns[0] > 0 and (columns[0] + columns[-1] + 1) / 2 >= 5 + 0.5 * (10 + width) / 2 - 1
