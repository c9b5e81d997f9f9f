"""Fusion layer: alpha_p = F + U * alpha_r."""

import keras
import numpy as np

from models.fusion import Fusion


def random_inputs(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    alpha_raw = rng.random((2, 5, 7, 1)).astype("float32")
    return probs, alpha_raw


def test_fusion_formula():
    probs, alpha_raw = random_inputs()
    fused = Fusion()([probs, alpha_raw]).numpy()
    np.testing.assert_allclose(fused, probs[..., 2:3] + probs[..., 1:2] * alpha_raw, rtol=1e-6)
    assert fused.min() >= 0.0 and fused.max() <= 1.0 + 1e-6


def test_fusion_certain_regions():
    alpha_raw = np.full((1, 1, 3, 1), 0.3, "float32")
    probs = np.array([[[[1, 0, 0], [0, 0, 1], [0, 1, 0]]]], "float32")  # B, F, U pixels
    np.testing.assert_allclose(Fusion()([probs, alpha_raw]).numpy().ravel(), [0.0, 1.0, 0.3])


def test_fusion_serializes_in_a_model(tmp_path):
    trimap = keras.Input((None, None, 3))
    alpha_raw = keras.Input((None, None, 1))
    model = keras.Model([trimap, alpha_raw], Fusion(name="fuse")([trimap, alpha_raw]))
    path = tmp_path / "fusion.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.get_layer("fuse"), Fusion)
    probs, raw = random_inputs(1)
    np.testing.assert_allclose(restored([probs, raw]), model([probs, raw]), rtol=1e-6)
