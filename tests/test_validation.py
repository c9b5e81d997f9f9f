"""Scores of candidate models on validation photos (shm.validation, evaluate.py --model)."""
import numpy as np
import pytest
from PIL import Image

import evaluate
from shm import validation


def test_scores_of_one_photo():
    mask = np.zeros((100, 80), np.float32)
    mask[20:80, 20:60] = 1.0
    perfect = validation.score_photo(mask, mask, mask)
    assert perfect["sad"] == perfect["sad_soft"] == perfect["sad_edge"] == 0.0 and perfect["iou"] == 1.0
    shifted = np.roll(mask, 2, axis=1)  # an edge error only: all of it lies in the edge band
    scores = validation.score_photo(shifted, mask, None)
    assert scores["sad"] == pytest.approx(2 * 60 * 2 / 1000) and scores["sad_edge"] == pytest.approx(scores["sad"])
    assert np.isnan(scores["sad_soft"]) and scores["iou"] == pytest.approx(38 * 60 / (42 * 60))
    blob = mask.copy()
    blob[85:95, 5:15] = 1.0  # a semantic error far from the edge: not in the band
    scores = validation.score_photo(blob, mask, None)
    assert scores["sad"] == pytest.approx(0.1) and scores["sad_edge"] == 0.0


def _split(tmp_path, names=("a", "b"), soft=("a",)):
    for folder in ("image", "mask", "alpha"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), np.uint8)).save(tmp_path / "image" / f"{name}.jpg")
        mask = np.zeros((48, 40), np.uint8)
        mask[10:40, 10:30] = 255
        Image.fromarray(mask).save(tmp_path / "mask" / f"{name}.png")
        if name in soft:
            Image.fromarray(mask).save(tmp_path / "alpha" / f"{name}.png")
    return tmp_path


def test_split_scores_average_soft_alpha_sad_over_the_photos_that_have_one(tmp_path):
    split = validation.ValidationSplit.from_folder(_split(tmp_path))
    assert [p.name for p in split.photos] == ["a", "b"] and split.photos[1].soft_alpha is None
    scores = validation.score_split(lambda image: np.zeros(image.shape[:2], np.float32), split)
    assert scores["sad"] == pytest.approx(0.6) and scores["sad_soft"] == pytest.approx(0.6)
    assert scores["iou"] == 0.0
    with pytest.raises(ValueError, match="needs image/ and mask/"):
        validation.ValidationSplit.from_folder(tmp_path / "mask")


def test_evaluate_scores_the_shipped_model_beside_candidates(tmp_path, capsys):
    split = _split(tmp_path / "val")
    assert evaluate.main(["--model", "--split", str(split), "--threads", "1", "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| model | val SAD / IoU | val SAD soft / edge |") and lines[2].startswith("| shipped |")
    assert evaluate.main(["--model", str(tmp_path / "missing.onnx"), "--split", str(split), "--no-progress"]) == 2
    assert "missing.onnx: no such model file" in capsys.readouterr().err


def test_live_weights_runner_follows_training_and_matches_the_frozen_path():
    import tiny_shm_exports
    from shm.backends import KerasRunner
    from shm.export import compare_outputs

    model = tiny_shm_exports.tiny_shm()
    live = KerasRunner(model, live_weights=True)
    images = np.random.default_rng(0).random((2, 64, 96, 3), np.float32)
    assert compare_outputs(KerasRunner(model)(images), live(images)).is_float32_exact()
    before = live(images)["alpha"]
    for variable in model.mnet.weights:  # a training step would change them in place like this
        variable.assign(variable * 1.5)
    after = live(images)
    assert np.abs(after["alpha"] - before).max() > 1e-3  # the new weights, not a copy of the old
    assert compare_outputs(KerasRunner(model)(images), after).is_float32_exact()
    assert len(live._graphs) == 1  # traced once for the size, whatever the weights



def test_candidates_are_scored_at_the_working_size_and_clamp_asked_for(tmp_path):
    import tiny_shm_exports
    from shm.inference import Matter

    split = validation.ValidationSplit.from_folder(_split(tmp_path / "val"))
    model = tiny_shm_exports.weights_path()
    results = validation.compare_models([model], [split], num_threads=1, progress=False, working_size=32, clamp=0)
    expected = validation.score_split(Matter.from_weights(model, working_size=32, clamp=0).predict, split)
    assert results[str(model)][split.name] == pytest.approx(expected, nan_ok=True)
    default = validation.compare_models([model], [split], num_threads=1, progress=False, working_size=32)
    assert default[str(model)][split.name]["sad"] != pytest.approx(expected["sad"])  # the default clamp acts
