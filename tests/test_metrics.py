"""shm.metrics: DIM-exact SAD / MSE / Gradient / Connectivity against the MATLAB fixture, and the
whole-image errors and IoU on hand-computed examples."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shm import metrics

FIXTURE = Path(__file__).parent / "fixtures" / "metrics"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
CASES = EXPECTED["cases"]
DIM_METRICS = {"sad": metrics.sad, "mse": metrics.mse, "grad": metrics.gradient_error,
               "conn": metrics.connectivity_error}
RTOL, ATOL = 1e-5, 1e-6  # the fixture README's tolerance for float64 implementations


def _read_case(case_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def read(kind):
        return np.asarray(Image.open(FIXTURE / "cases" / f"{case_id}_{kind}.png"))
    return read("pred"), read("alpha"), read("trimap")


def test_fixture_is_complete():
    ids = [case["id"] for case in CASES]
    assert ids == [f"{index:02d}" for index in range(12)]
    for case in CASES:
        pred, gt, trimap = _read_case(case["id"])
        assert pred.dtype == gt.dtype == trimap.dtype == np.uint8
        assert pred.shape == gt.shape == trimap.shape == (case["height"], case["width"])
        assert set(np.unique(trimap)) <= {0, 128, 255}
        assert int(np.sum(trimap == 128)) == case["n_unknown"]
        assert all(isinstance(case[name], float) for name in DIM_METRICS)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_dim_metrics_match_the_matlab_reference(case):
    pred, gt, trimap = _read_case(case["id"])
    for name, function in DIM_METRICS.items():
        assert function(pred, gt, trimap) == pytest.approx(case[name], rel=RTOL, abs=ATOL), name


def test_float_alphas_give_the_same_dim_metrics_as_uint8():
    pred, gt, trimap = _read_case("04")
    case = CASES[4]
    pred_float, gt_float = pred.astype(np.float32) / 255.0, gt.astype(np.float32) / 255.0
    for name, function in DIM_METRICS.items():
        assert function(pred_float[..., None], gt_float, trimap[..., None]) == pytest.approx(
            case[name], rel=RTOL, abs=ATOL), name


def test_batches_give_the_per_image_values():
    pred2, gt2, trimap2 = _read_case("02")
    pred3, gt3, _ = _read_case("03")
    height, width = gt3.shape  # crop case 02 to case 03's size to stack them
    pred = np.stack([pred2[:height, :width], pred3])
    gt = np.stack([gt2[:height, :width], gt3])
    trimap = trimap2[:height, :width]
    for function in DIM_METRICS.values():
        batch = function(pred, gt, trimap)
        assert batch.shape == (2,)
        np.testing.assert_allclose(batch, [function(pred[0], gt[0], trimap), function(pred[1], gt[1], trimap)])


def test_dim_sad_and_mse_count_only_unknown_pixels():
    pred = np.array([[0.0, 1.0], [0.5, 0.25]])
    gt = np.zeros((2, 2))
    trimap = np.array([[128, 0], [128, 255]], dtype=np.uint8)  # unknown: 0.0 and 0.5
    assert metrics.sad(pred, gt, trimap) == pytest.approx(0.5 / 1000)
    assert metrics.mse(pred, gt, trimap) == pytest.approx((0.0 + 0.25) / 2)
    # 0/1/2 class indices as a boolean region, and a float trimap in [0, 1], select the same pixels.
    assert metrics.sad(pred, gt, np.array([[1, 0], [1, 2]]) == 1) == pytest.approx(0.5 / 1000)
    assert metrics.sad(pred, gt, trimap / 255.0) == pytest.approx(0.5 / 1000)


def test_mse_of_an_empty_unknown_region_is_nan():
    assert math.isnan(metrics.mse(np.ones((3, 3)), np.zeros((3, 3)), np.zeros((3, 3), np.uint8)))


def test_whole_image_errors_by_hand():
    pred = np.array([[0.0, 1.0], [0.5, 0.25]])
    gt = np.zeros((2, 2))
    assert metrics.sad_whole(pred, gt) == pytest.approx(1.75 / 1000)
    assert metrics.mse_whole(pred, gt) == pytest.approx((1.0 + 0.25 + 0.0625) / 4)
    assert metrics.mad_whole(pred, gt) == pytest.approx(1.75 / 4)
    # uint8 alphas are divided by 255: 255 vs 0 on one of 4 pixels.
    pred_uint8 = np.array([[255, 0], [0, 0]], dtype=np.uint8)
    assert metrics.sad_whole(pred_uint8, np.zeros((2, 2), np.uint8)) == pytest.approx(1 / 1000)
    assert metrics.mad_whole(pred_uint8, np.zeros((2, 2), np.uint8)) == pytest.approx(0.25)


def test_iou_at_one_half_by_hand():
    pred = np.array([[0.6, 0.4], [0.9, 0.5]])
    gt = np.array([[0.7, 0.7], [0.2, 0.5]])  # 0.5 itself is not foreground
    assert metrics.iou(pred, gt) == pytest.approx(1 / 3)  # intersection {(0,0)}, union of 3 pixels
    assert metrics.iou(pred, pred) == 1.0
    assert metrics.iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0  # both empty: a perfect prediction
    assert metrics.iou(np.ones((2, 2)), np.zeros((2, 2))) == 0.0


def test_largest_component_ties_go_to_the_first_in_column_major_order():
    # Two 2-pixel components: the top-right one comes first in row-major order, the bottom-left one in
    # column-major order, which is what MATLAB's bwconncomp + max picks.
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 2:4] = True
    mask[3, 0:2] = True
    largest = metrics._largest_component(mask)
    np.testing.assert_array_equal(np.argwhere(largest), [[3, 0], [3, 1]])


def test_connectivity_uses_4_connectivity():
    # Diagonal neighbours are separate components: the 3-pixel diagonal is 3 components of 1 pixel.
    mask = np.eye(3, dtype=bool)
    assert metrics._largest_component(mask).sum() == 1


def test_matting_errors_without_and_with_trimap():
    pred, gt, trimap = _read_case("05")
    without = metrics.matting_errors(pred, gt)
    assert without.sad is without.mse is without.grad is without.conn is None
    assert without.sad_whole == pytest.approx(metrics.sad_whole(pred, gt))
    with_trimap = metrics.matting_errors(pred, gt, trimap)
    assert with_trimap.conn == pytest.approx(CASES[5]["conn"], rel=RTOL, abs=ATOL)


def test_mismatched_shapes_raise_value_error():
    with pytest.raises(ValueError, match="differs"):
        metrics.sad_whole(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="trimap shape"):
        metrics.sad(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((3, 2), np.uint8))
