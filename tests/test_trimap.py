import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from shm import trimap as tm

ROOT = Path(__file__).resolve().parents[1]


def _random_mask(seed: int, size=(13, 17)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(size) > 0.7).astype(np.uint8)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
def test_dilate_and_erode_equal_opencv(size):
    mask = _random_mask(size)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    ours_dilated = tm.dilate(mask[..., None].astype(np.float32), size).numpy()[..., 0]
    ours_eroded = tm.erode(mask[..., None].astype(np.float32), size).numpy()[..., 0]
    np.testing.assert_array_equal(ours_dilated, cv2.dilate(mask, kernel))
    np.testing.assert_array_equal(ours_eroded, cv2.erode(mask, kernel))


def _soft_disc(size=32, radius=9.0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip(radius + 1.5 - distance, 0.0, 1.0).astype(np.float32)[..., None]


def test_every_soft_pixel_is_unknown_and_classes_follow_the_rule():
    alpha = _soft_disc()
    for band in (1, 3, 8):
        trimap = tm.trimap_from_alpha(alpha, band).numpy()
        assert trimap.dtype == np.int32 and trimap.shape == alpha.shape
        soft = (alpha > 0) & (alpha < 1)
        assert np.all(trimap[soft] == tm.UNKNOWN)
        assert np.all(trimap[alpha == 0] != tm.FOREGROUND)
        assert np.all(trimap[alpha == 1] != tm.BACKGROUND)
    # With band 1 (no morphology) the unknown class is exactly the soft pixels.
    band1 = tm.trimap_from_alpha(alpha, 1).numpy()
    np.testing.assert_array_equal(band1 == tm.UNKNOWN, (alpha > 0) & (alpha < 1))


def test_wider_band_grows_unknown_region_to_match_opencv():
    alpha = _soft_disc()
    band = 5
    kernel = np.ones((band, band), np.uint8)
    expected_reach = cv2.dilate((alpha[..., 0] > 0).astype(np.uint8), kernel)
    expected_core = cv2.erode((alpha[..., 0] >= 1).astype(np.uint8), kernel)
    expected = expected_reach + expected_core
    np.testing.assert_array_equal(tm.trimap_from_alpha(alpha, band).numpy()[..., 0], expected)
    narrow = (tm.trimap_from_alpha(alpha, 1).numpy() == tm.UNKNOWN).sum()
    assert (expected == tm.UNKNOWN).sum() > narrow


def test_batched_input_matches_per_image():
    alphas = np.stack([_soft_disc(radius=r) for r in (5.0, 9.0)])
    batched = tm.trimap_from_alpha(alphas, 4).numpy()
    for i in range(2):
        np.testing.assert_array_equal(batched[i], tm.trimap_from_alpha(alphas[i], 4).numpy())


def test_random_band_per_sample_inside_tf_data():
    alphas = np.stack([_soft_disc(size=40) for _ in range(4)])

    def make_trimap(index, alpha):
        band = tm.random_band_px(tf.shape(alpha)[0], tf.shape(alpha)[1], 0.05, 0.3,
                                 seed=tf.stack([index, tf.constant(7, tf.int64)]))
        return band, tm.trimap_from_alpha(alpha, band)

    dataset = tf.data.Dataset.from_tensor_slices((tf.range(4, dtype=tf.int64), alphas)).map(make_trimap)
    results = list(dataset.as_numpy_iterator())
    bands = [int(band) for band, _ in results]
    assert all(2 <= band <= 12 for band in bands)
    assert len(set(bands)) > 1
    for band, trimap in results:
        np.testing.assert_array_equal(trimap, tm.trimap_from_alpha(alphas[0], band).numpy())
    assert bands == [int(band) for band, _ in dataset.as_numpy_iterator()]


def test_random_band_is_at_least_one_and_rejects_bad_range():
    assert int(tm.random_band_px(3, 3, 0.0, 0.01)) == 1
    assert int(tm.random_band_px(3, 3, 0.0, 0.01, minimum=tm.MIN_BAND_PX)) == tm.MIN_BAND_PX
    with pytest.raises(ValueError):
        tm.random_band_px(10, 10, 0.5, 0.1)


@pytest.mark.parametrize("fraction", [0.01, 0.02, 0.03, 0.05, 0.25, 1 / 3])
@pytest.mark.parametrize("minimum", [1, tm.MIN_BAND_PX])
def test_the_band_rule_and_its_tf_twin_agree_on_many_sizes(fraction, minimum):
    rng = np.random.default_rng(round(fraction * 1000))
    sizes = [(h, w) for h in (1, 2, 6, 10, 50, 150, 250) for w in (1, 10, 250)]
    sizes += [tuple(int(side) for side in pair) for pair in rng.integers(1, 5000, (100, 2))]
    ours = [tm.band_px(h, w, fraction, minimum) for h, w in sizes]
    height, width = tf.constant([h for h, _ in sizes]), tf.constant([w for _, w in sizes])
    twin = tf.vectorized_map(lambda hw: tm.band_px_tf(hw[0], hw[1], fraction, minimum), tf.stack([height, width], 1))
    assert ours == twin.numpy().tolist()


def test_the_band_rule_rounds_half_to_even_at_least_its_minimum():
    assert [tm.band_px(side, 100, 0.25) for side in (2, 6, 10, 3)] == [1, 2, 2, 1]  # 0.5, 1.5, 2.5, 0.75
    assert tm.band_px(2, 2, 0.25) == 1 and tm.band_px(2, 2, 0.25, minimum=3) == 3
    assert tm.band_px(600, 400, 0.03) == 12 and tm.band_px(400, 600, 0.03) == 12  # the shorter side


def test_the_band_rule_and_the_validation_band_need_no_tensorflow():
    code = ("import sys; from shm import trimap, validation; trimap.band_px(10, 10, 0.1)\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_one_hot_and_png_values():
    trimap = np.array([[0, 1], [2, 1]], np.int32)[..., None]
    one_hot = tm.to_one_hot(trimap).numpy()
    assert one_hot.shape == (2, 2, 3)
    np.testing.assert_array_equal(one_hot.argmax(-1), trimap[..., 0])
    png = tm.to_png_values(tf.constant(trimap))  # an eager tensor, as training's are
    assert png.dtype == np.uint8
    np.testing.assert_array_equal(png[..., 0], [[0, 128], [255, 128]])


def test_rejects_alpha_of_wrong_rank():
    with pytest.raises(ValueError, match="alpha must be"):
        tm.trimap_from_alpha(np.zeros((4, 4), np.float32), 3)


@pytest.mark.parametrize("size", [6, 8, 9, 16, 25, 40])
def test_square_morphology_with_a_tensor_size_in_a_graph_equals_opencv(size):
    """The doubling window max is exact for any size (powers of two and not, larger than the image)."""
    masks = np.stack([_random_mask(size + i, size=(31, 23)) for i in range(2)])[..., None].astype(np.float32)
    kernel = np.ones((size, size), np.uint8)
    graph_dilate = tf.function(lambda mask, k: tm.dilate(mask, k), reduce_retracing=True)
    graph_erode = tf.function(lambda mask, k: tm.erode(mask, k), reduce_retracing=True)
    dilated = graph_dilate(masks, tf.constant(size)).numpy()
    eroded = graph_erode(masks, tf.constant(size)).numpy()
    for i in range(2):
        mask = masks[i, ..., 0].astype(np.uint8)
        np.testing.assert_array_equal(dilated[i, ..., 0], cv2.dilate(mask, kernel))
        np.testing.assert_array_equal(eroded[i, ..., 0], cv2.erode(mask, kernel))
