"""models.efficientnet_lite + its ImageNet weights in models.weights: features equal to the PyTorch reference."""

from pathlib import Path

import keras
import numpy as np
import pytest

from backbone_helpers import add_classifier, add_conv_bn, assert_every_file_array_loaded, variable_shapes
from models.efficientnet_lite import EfficientNetLite0
from models.weights import (
    EFFICIENTNET_LITE0_IMAGENET_PATH,
    MOBILENETV2_IMAGENET_PATH,
    WeightsError,
    convert_pytorch_backbone,
    load_imagenet_backbone,
)

FIXTURE = Path(__file__).parent / "fixtures" / "efficientnet_lite0" / "reference.npz"
IMAGENET_MEAN = np.float32([0.485, 0.456, 0.406])
IMAGENET_STD = np.float32([0.229, 0.224, 0.225])
# The fixture's feature maps (the reference's names) -> the layer of ours whose output it is.
REFERENCE_LAYERS = {"stem": "stem_relu", "block0": "block0_project_bn", "block2": "block2_add",
                    "block4": "block4_add", "block10": "block10_add", "block15": "block15_project_bn",
                    "head": "head_relu"}


@pytest.fixture(scope="module")
def classifier():
    model = EfficientNetLite0(input_size=224, include_top=True)
    report = load_imagenet_backbone(model)
    return model, report


def test_features_at_every_stride_and_logits_match_the_reference(classifier):
    model, _ = classifier
    reference = np.load(FIXTURE)
    # The README's preprocessing of the three photos (kept as uint8 to keep the fixture small).
    x = (reference["rgb"].astype(np.float32) - 255 * IMAGENET_MEAN) / (255 * IMAGENET_STD)
    probe = keras.Model(model.input, {**model.output, **{name: model.get_layer(layer).output
                                                          for name, layer in REFERENCE_LAYERS.items()}})
    outputs = probe(x, training=False)
    for name in REFERENCE_LAYERS:
        positions = reference[f"{name}_positions"]  # rows and columns kept, borders included
        ours = outputs[name][0].numpy()[np.ix_(positions, positions)]
        np.testing.assert_allclose(ours, reference[name], rtol=0, atol=1e-3, err_msg=name)
    # The model's own feature outputs are those layers: stride 2, 4, 8, 16 and the head at 32.
    for stride, name in (("stride2", "block0"), ("stride4", "block2"), ("stride8", "block4"),
                         ("stride16", "block10"), ("stride32", "head")):
        np.testing.assert_array_equal(outputs[stride].numpy(), outputs[name].numpy(), err_msg=stride)
    np.testing.assert_allclose(outputs["logits"].numpy(), reference["logits"], rtol=0, atol=1e-3)
    predicted = outputs["logits"].numpy().argmax(axis=1)
    assert predicted[0] == 285 and predicted[2] == 967  # chelsea: Egyptian cat; coffee: espresso


def test_loading_puts_exactly_the_file_values_into_every_variable(classifier):
    model, report = classifier
    # The full classifier uses every array of the file.
    assert_every_file_array_loaded(model, np.load(EFFICIENTNET_LITE0_IMAGENET_PATH))
    assert report.skipped == {} and len(report.loaded) == 49 * 2 + 1  # 49 conv+BN pairs and the classifier


def test_cut_backbone_reports_the_unused_layers_and_gives_the_skip_features():
    model = EfficientNetLite0(input_size=(64, 96), include_head=False)
    report = load_imagenet_backbone(model)
    assert set(report.skipped) == {"head_conv", "head_bn", "classifier"}
    outputs = model(np.zeros((1, 64, 96, 3), np.float32))
    shapes = {stride: tuple(outputs[stride].shape) for stride in outputs}
    assert shapes == {"stride2": (1, 32, 48, 16), "stride4": (1, 16, 24, 24), "stride8": (1, 8, 12, 40),
                      "stride16": (1, 4, 6, 112), "stride32": (1, 2, 3, 320)}


def _reference_state(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random arrays under the reference's names and PyTorch layouts, from the README's table."""
    state = {}

    def conv_bn(conv: str, bn: str, shape: tuple[int, ...]):
        add_conv_bn(state, rng, conv, bn, shape)

    conv_bn("_conv_stem", "_bn0", (32, 3, 3, 3))
    # (repeats, kernel, stride, expand, in, out) as the fixture README gives them.
    stages = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
              (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
    index = 0
    for repeats, kernel, _, expand, in_channels, out_channels in stages:
        for repeat in range(repeats):
            block_in = in_channels if repeat == 0 else out_channels
            prefix, hidden = f"_blocks.{index}", block_in * expand
            if expand != 1:
                conv_bn(f"{prefix}._expand_conv", f"{prefix}._bn0", (hidden, block_in, 1, 1))
            conv_bn(f"{prefix}._depthwise_conv", f"{prefix}._bn1", (hidden, 1, kernel, kernel))
            conv_bn(f"{prefix}._project_conv", f"{prefix}._bn2", (out_channels, hidden, 1, 1))
            index += 1
    conv_bn("_conv_head", "_bn1", (1280, 320, 1, 1))
    add_classifier(state, rng, "_fc")
    return state


def test_conversion_moves_pytorch_layouts_into_keras_layouts():
    state = _reference_state(np.random.default_rng(0))
    assert len(state) == 247  # as many arrays as the real file
    converted = convert_pytorch_backbone(state, "efficientnet_lite0")
    assert converted["stem_conv/kernel"][0, 2, 1, 5] == state["_conv_stem.weight"][5, 1, 0, 2]
    # Depthwise (C, 1, kh, kw) -> (kh, kw, C, 1): a 3x3 without expansion, a 5x5 after one.
    assert converted["block0_dwconv/kernel"][2, 1, 7, 0] == state["_blocks.0._depthwise_conv.weight"][7, 0, 2, 1]
    assert converted["block3_dwconv/kernel"][4, 0, 100, 0] == state["_blocks.3._depthwise_conv.weight"][100, 0, 4, 0]
    assert converted["block3_expand_conv/kernel"][0, 0, 20, 90] == state["_blocks.3._expand_conv.weight"][90, 20, 0, 0]
    np.testing.assert_array_equal(converted["block3_expand_bn/gamma"], state["_blocks.3._bn0.weight"])
    np.testing.assert_array_equal(converted["block3_dw_bn/moving_mean"], state["_blocks.3._bn1.running_mean"])
    np.testing.assert_array_equal(converted["block15_project_bn/moving_variance"], state["_blocks.15._bn2.running_var"])
    np.testing.assert_array_equal(converted["head_bn/beta"], state["_bn1.bias"])
    np.testing.assert_array_equal(converted["classifier/kernel"], state["_fc.weight"].T)
    expected = variable_shapes(EfficientNetLite0(input_size=32, include_top=True))
    assert {key: value.shape for key, value in converted.items()} == expected


def test_conversion_refuses_another_network():
    with pytest.raises(WeightsError, match="mnv2.npz: no array '_conv_stem.weight': not EfficientNet-Lite0"):
        convert_pytorch_backbone({"features.0.0.weight": np.zeros((32, 3, 3, 3), np.float32)},
                                 "efficientnet_lite0", "mnv2.npz")
    with pytest.raises(WeightsError, match=r"unexpected arrays \['_blocks.0._se_reduce.weight'\]"):
        state = _reference_state(np.random.default_rng(0))
        convert_pytorch_backbone({**state, "_blocks.0._se_reduce.weight": np.zeros(1)}, "efficientnet_lite0")


def test_mobilenetv2_weights_into_efficientnet_are_a_clear_error():
    model = EfficientNetLite0(input_size=32, include_head=False)
    before = model.get_layer("stem_conv").kernel.numpy()
    with pytest.raises(WeightsError, match=f"{MOBILENETV2_IMAGENET_PATH}: no array 'block0_dwconv/kernel' "
                                           "for the EfficientNetLite0 backbone"):
        load_imagenet_backbone(model, MOBILENETV2_IMAGENET_PATH)
    np.testing.assert_array_equal(model.get_layer("stem_conv").kernel.numpy(), before)  # nothing half-loaded
