"""PSPNet-50 equals keras-segmentation 0.3.0's pspnet_50 (fixture: tests/fixtures/pspnet50)."""

import keras
import numpy as np
import pytest

from models.layers import Normalize
from models.presets import PSPNET50_RGB_MEAN, PSPNET50_RGB_STD
from models.pspnet50 import build_pspnet50
from pspnet50_fixture import FIXTURE_DIR, deterministic_weights, load_layout, preprocess_image


@pytest.fixture(scope="module")
def layout():
    return load_layout()


@pytest.fixture(scope="module")
def ade20k_model(layout):
    """The 150-class network with the fixture's deterministic weights."""
    model = build_pspnet50(n_classes=150)
    weights = deterministic_weights(layout)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name])
    return model


def test_weighted_layers_have_the_names_shapes_and_order_of_the_ade20k_file(ade20k_model, layout):
    ours = [(layer.name, [tuple(v.shape) for v in layer.weights]) for layer in ade20k_model.layers if layer.weights]
    theirs = [(layer["name"], [tuple(shape) for _, shape in layer["weights"]]) for layer in layout]
    assert ours == theirs


def test_output_equals_keras_segmentation_on_the_reference_input(ade20k_model):
    reference = np.load(FIXTURE_DIR / "reference.npz")
    probs = ade20k_model.predict_on_batch(reference["x"])[0]
    assert probs.shape == (473, 473, 150)
    assert np.abs(probs[::8, ::8] - reference["y_sub"]).max() < 1e-3
    assert np.mean(probs.argmax(-1) == reference["argmax"]) > 0.999


def test_preprocess_image_equals_keras_segmentation_get_image_array():
    reference = np.load(FIXTURE_DIR / "preprocess.npz")
    ours = preprocess_image(reference["raw_bgr"])
    assert ours.dtype == np.float32 and ours.shape == (473, 473, 3)
    np.testing.assert_allclose(ours, reference["model_input"], atol=1e-4)


def test_normalize_with_the_exported_constants_equals_the_preprocessing():
    bgr = np.random.default_rng(0).integers(0, 256, (473, 473, 3), dtype=np.uint8)
    rgb01 = bgr[None, :, :, ::-1].astype(np.float32) / 255.0
    normalized = keras.ops.convert_to_numpy(Normalize(PSPNET50_RGB_MEAN, PSPNET50_RGB_STD)(rgb01))[0]
    np.testing.assert_allclose(normalized, preprocess_image(bgr), atol=1e-4)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8)])
def test_preprocess_image_rejects_what_cv2_imread_does_not_give(bad):
    with pytest.raises(ValueError, match="uint8 \\(H, W, 3\\)"):
        preprocess_image(bad)


def test_input_size_the_pyramid_cannot_pool_is_refused():
    with pytest.raises(ValueError, match="input_size=500"):
        build_pspnet50(input_size=500)


def test_713_input_scales_the_pyramid_pooling_with_the_map():
    model = build_pspnet50(n_classes=3, input_size=713)
    pools = sorted(layer.pool_size[0] for layer in model.layers if isinstance(layer, keras.layers.AveragePooling2D))
    assert pools == [15, 30, 45, 90]
    assert model.output_shape == (None, 713, 713, 3)


def test_small_model_gives_probabilities_and_its_config_is_its_arguments():
    # Its .keras round trip (185 MB of weights) is test_presets.py's, inside the pspnet50 SHM.
    model = build_pspnet50(n_classes=3, input_size=41)  # 6x6 map: pools 6/3/2/1
    photo = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    image = preprocess_image(photo, input_size=41)[None]
    probs = model.predict_on_batch(image)
    assert probs.shape == (1, 41, 41, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert model.get_config() == {"name": "pspnet50", "trainable": True, "n_classes": 3, "input_size": 41}
