"""models.light_tnet: MobileNetV2 or EfficientNet-Lite0 + U-Net decoder, RGB [0, 1] in, (B, U, F) softmax out."""

import keras
import numpy as np
import pytest

from models.efficientnet_lite import EfficientNetLite0
from models.light_tnet import LightTNet, build_light_tnet
from models.weights import EFFICIENTNET_LITE0_IMAGENET_PATH, MOBILENETV2_IMAGENET_PATH, WeightsError

SMALL = dict(decoder_widths=(16, 12, 8, 8))


@pytest.fixture(scope="module")
def dynamic_tnet():
    return build_light_tnet(input_size=None, backbone_weights="imagenet", **SMALL)


def _images(height: int, width: int, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (batch, height, width, 3)).astype(np.float32)


@pytest.mark.parametrize("height, width", [(64, 64), (64, 96)])
def test_dynamic_model_outputs_a_softmax_at_full_resolution(dynamic_tnet, height, width):
    probabilities = dynamic_tnet(_images(height, width), training=False).numpy()
    assert probabilities.shape == (2, height, width, 3)
    assert probabilities.min() >= 0
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


def test_fixed_size_model_has_static_shapes():
    model = build_light_tnet(input_size=(64, 96), backbone_weights=None, **SMALL)
    assert tuple(model.output.shape) == (None, 64, 96, 3)
    assert model(_images(64, 96, batch=1)).shape == (1, 64, 96, 3)


def test_imagenet_weights_reach_the_backbone(dynamic_tnet):
    arrays = np.load(MOBILENETV2_IMAGENET_PATH)
    backbone = dynamic_tnet.backbone
    np.testing.assert_array_equal(backbone.get_layer("stem_conv").kernel.numpy(), arrays["stem_conv/kernel"])
    np.testing.assert_array_equal(backbone.get_layer("block17_project_bn").moving_variance.numpy(),
                                  arrays["block17_project_bn/moving_variance"])
    assert "head_conv" not in [layer.name for layer in backbone.layers]  # cut at the 320-channel block


def test_normalisation_is_inside_the_graph(dynamic_tnet):
    image = _images(64, 64, batch=1)
    normalized = dynamic_tnet.get_layer("imagenet_normalize")(image).numpy()
    np.testing.assert_allclose(normalized[..., 0], (image[..., 0] - 0.485) / 0.229, rtol=1e-6)


def test_efficientnet_encoder_gets_its_imagenet_weights_and_feeds_the_decoder():
    model = build_light_tnet(input_size=(64, 96), backbone="efficientnet_lite0", **SMALL)
    assert isinstance(model.backbone, EfficientNetLite0)
    arrays = np.load(EFFICIENTNET_LITE0_IMAGENET_PATH)
    np.testing.assert_array_equal(model.backbone.get_layer("block10_dwconv").kernel.numpy(),
                                  arrays["block10_dwconv/kernel"])
    # Each decoder stage concatenates the upsampled deeper stage with the skip feature of its stride.
    concat_shapes = {stride: tuple(model.get_layer(f"decoder_{stride}_concat").output.shape)
                     for stride in ("stride16", "stride8", "stride4", "stride2")}
    assert concat_shapes == {"stride16": (None, 4, 6, 320 + 112), "stride8": (None, 8, 12, 16 + 40),
                             "stride4": (None, 16, 24, 12 + 24), "stride2": (None, 32, 48, 8 + 16)}
    probabilities = model(_images(64, 96), training=False).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("backbone", ["mobilenetv2", "efficientnet_lite0"])
def test_keras_file_round_trip_gives_identical_outputs(tmp_path, backbone):
    model = build_light_tnet(input_size=64, backbone_weights=None, backbone_head=True, backbone=backbone, **SMALL)
    # Non-trivial BN statistics so a lost moving mean/variance would show.
    for layer in model.backbone.layers[:12]:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, np.float32))
    path = tmp_path / "tnet.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, LightTNet) and isinstance(restored.backbone, type(model.backbone))
    assert restored.get_config() == model.get_config() and restored.get_config()["backbone"] == backbone
    image = _images(64, 64)
    np.testing.assert_array_equal(restored(image, training=False).numpy(), model(image, training=False).numpy())


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match=f"{tmp_path / 'gone.npz'}: weights file not found"):
        build_light_tnet(input_size=64, weights_path=str(tmp_path / "gone.npz"), **SMALL)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_size=(64, 80)), "not a multiple of 32"),
    (dict(decoder_widths=(16, 8)), "needs 4 widths"),
    (dict(backbone_weights="coco"), "backbone_weights"),
    (dict(backbone="resnet50"), "unknown backbone 'resnet50'"),
])
def test_bad_configuration_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_light_tnet(**{"backbone_weights": None, **kwargs})


def test_batch_norm_statistics_follow_training_quickly():
    """Keras' default momentum 0.99 left the moving variances near their initial 1.0 after ~300
    steps, and the T-Net then predicted one class everywhere in inference mode (docs/light_tnet.md)."""
    from models.layers import BN_MOMENTUM
    from models.mnet import build_mnet

    networks = (build_light_tnet(64, backbone_weights=None),
                build_light_tnet(64, backbone="efficientnet_lite0", backbone_weights=None), build_mnet(64))
    momenta = {layer.momentum for network in networks
               for layer in network._flatten_layers(include_self=False, recursive=True)
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {BN_MOMENTUM} and BN_MOMENTUM <= 0.9


def test_a_rectangular_size_comes_back_from_the_saved_config_as_a_tuple():
    import json

    tnet = build_light_tnet(input_size=(64, 96), backbone_weights=None, **SMALL)
    again = LightTNet.from_config(json.loads(json.dumps(tnet.get_config())))  # JSON keeps lists only
    assert again.input_size == (64, 96) and again.backbone.input_size == (64, 96)
    assert again.output_shape == (None, 64, 96, 3)
