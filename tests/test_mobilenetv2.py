"""models.mobilenetv2 + the ImageNet MobileNetV2 section of models.weights: torchvision-exact features."""

from pathlib import Path

import numpy as np
import pytest

from backbone_helpers import add_classifier, add_conv_bn, assert_every_file_array_loaded, variable_shapes
from models.mobilenetv2 import MobileNetV2, block_specs
from models.weights import (
    MOBILENETV2_IMAGENET_PATH,
    WeightsError,
    convert_pytorch_backbone,
    load_imagenet_backbone,
)

FIXTURE = Path(__file__).parent / "fixtures" / "mobilenetv2" / "reference.npz"
STRIDES = ("stride2", "stride4", "stride8", "stride16", "stride32")


@pytest.fixture(scope="module")
def classifier():
    model = MobileNetV2(input_size=224, include_top=True)
    report = load_imagenet_backbone(model)
    return model, report


def test_features_and_logits_match_torchvision(classifier):
    model, _ = classifier
    reference = np.load(FIXTURE)
    outputs = model(reference["x"], training=False)
    for stride in STRIDES:
        np.testing.assert_allclose(outputs[stride][:1].numpy(), reference[stride], rtol=0, atol=1e-3, err_msg=stride)
    np.testing.assert_allclose(outputs["logits"].numpy(), reference["logits"], rtol=0, atol=1e-3)
    # chelsea is a cat (tabby 281 .. Egyptian cat 285), coffee an espresso (967).
    predicted = outputs["logits"].numpy().argmax(axis=1)
    assert 281 <= predicted[0] <= 285 and predicted[2] == 967


def test_loading_puts_exactly_the_file_values_into_every_variable(classifier):
    model, report = classifier
    # The full classifier uses every array of the file.
    assert_every_file_array_loaded(model, np.load(MOBILENETV2_IMAGENET_PATH))
    assert report.skipped == {} and len(report.loaded) == 52 * 2 + 1  # 52 conv+BN pairs and the classifier


def test_cut_backbone_reports_the_unused_layers_and_ends_at_320_channels():
    model = MobileNetV2(input_size=64, include_head=False)
    report = load_imagenet_backbone(model)
    assert set(report.skipped) == {"head_conv", "head_bn", "classifier"}
    outputs = model(np.zeros((1, 64, 64, 3), np.float32))
    shapes = {stride: tuple(outputs[stride].shape) for stride in STRIDES}
    assert shapes == {"stride2": (1, 32, 32, 16), "stride4": (1, 16, 16, 24), "stride8": (1, 8, 8, 32),
                      "stride16": (1, 4, 4, 96), "stride32": (1, 2, 2, 320)}


def test_include_top_without_head_is_refused():
    with pytest.raises(ValueError, match="include_head"):
        MobileNetV2(include_head=False, include_top=True)


def _torchvision_state(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random arrays under torchvision's MobileNetV2 names and PyTorch layouts, derived independently here."""
    state = {}

    def conv_bn(conv: str, bn: str, shape: tuple[int, ...]):
        add_conv_bn(state, rng, conv, bn, shape)
        state[f"{bn}.num_batches_tracked"] = np.array(7)

    conv_bn("features.0.0", "features.0.1", (32, 3, 3, 3))
    for spec in block_specs():
        prefix, hidden, k = f"features.{spec.index}.conv", spec.in_channels * spec.expansion, 0
        if spec.expansion != 1:
            conv_bn(f"{prefix}.0.0", f"{prefix}.0.1", (hidden, spec.in_channels, 1, 1))
            k = 1
        conv_bn(f"{prefix}.{k}.0", f"{prefix}.{k}.1", (hidden, 1, 3, 3))
        conv_bn(f"{prefix}.{k + 1}", f"{prefix}.{k + 2}", (spec.out_channels, hidden, 1, 1))
    conv_bn("features.18.0", "features.18.1", (1280, 320, 1, 1))
    add_classifier(state, rng, "classifier.1")
    return state


def test_conversion_moves_pytorch_layouts_into_keras_layouts():
    state = _torchvision_state(np.random.default_rng(0))
    converted = convert_pytorch_backbone(state, "mobilenetv2")
    # Conv (out, in, kh, kw) -> (kh, kw, in, out): stem output 5, input channel 1, tap (0, 2).
    assert converted["stem_conv/kernel"][0, 2, 1, 5] == state["features.0.0.weight"][5, 1, 0, 2]
    # Depthwise (C, 1, kh, kw) -> (kh, kw, C, 1), in a block with and without expansion.
    assert converted["block1_dwconv/kernel"][2, 1, 7, 0] == state["features.1.conv.0.0.weight"][7, 0, 2, 1]
    assert converted["block5_dwconv/kernel"][0, 1, 100, 0] == state["features.5.conv.1.0.weight"][100, 0, 0, 1]
    assert converted["block5_project_conv/kernel"][0, 0, 150, 3] == state["features.5.conv.2.weight"][3, 150, 0, 0]
    np.testing.assert_array_equal(converted["block5_project_bn/moving_variance"], state["features.5.conv.3.running_var"])
    np.testing.assert_array_equal(converted["head_bn/gamma"], state["features.18.1.weight"])
    np.testing.assert_array_equal(converted["classifier/kernel"], state["classifier.1.weight"].T)
    # Every converted array fits the Keras model it is meant for.
    expected = variable_shapes(MobileNetV2(input_size=32, include_top=True))
    assert {key: value.shape for key, value in converted.items()} == expected


def test_conversion_refuses_another_network():
    state = _torchvision_state(np.random.default_rng(0))
    with pytest.raises(WeightsError, match="other.npz: no array 'classifier.1.bias'"):
        convert_pytorch_backbone({k: v for k, v in state.items() if k != "classifier.1.bias"}, "mobilenetv2",
                                 "other.npz")
    with pytest.raises(WeightsError, match="unexpected arrays"):
        convert_pytorch_backbone({**state, "features.19.0.weight": np.zeros(1)}, "mobilenetv2")


@pytest.fixture(scope="module")
def small_backbone():
    return MobileNetV2(input_size=32, include_head=False)


def test_missing_file_is_a_clear_error(small_backbone, tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(WeightsError, match=f"{missing}: weights file not found"):
        load_imagenet_backbone(small_backbone, missing)


def test_corrupt_file_is_a_clear_error(small_backbone, tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(MOBILENETV2_IMAGENET_PATH.read_bytes()[:5000])  # truncated download
    with pytest.raises(WeightsError, match=f"{corrupt}: not a readable .npz"):
        load_imagenet_backbone(small_backbone, corrupt)


def test_unconverted_or_mismatching_file_is_a_clear_error(small_backbone, tmp_path):
    torch_named = tmp_path / "torch.npz"
    np.savez(torch_named, **{"features.0.0.weight": np.zeros((32, 3, 3, 3), np.float32)})
    with pytest.raises(WeightsError, match=f"{torch_named}: not our converted MobileNetV2.*convert_backbone.py --backbone mobilenetv2"):
        load_imagenet_backbone(small_backbone, torch_named)
    arrays = dict(np.load(MOBILENETV2_IMAGENET_PATH))
    arrays["block3_dwconv/kernel"] = arrays["block3_dwconv/kernel"][:, :, :10]
    wrong_shape = tmp_path / "wrong.npz"
    np.savez(wrong_shape, **arrays)
    before = small_backbone.get_layer("stem_conv").kernel.numpy()
    with pytest.raises(WeightsError, match=r"wrong.npz: 'block3_dwconv/kernel' has shape \(3, 3, 10, 1\)"):
        load_imagenet_backbone(small_backbone, wrong_shape)
    # Nothing is half-loaded: the check runs before any assignment.
    np.testing.assert_array_equal(small_backbone.get_layer("stem_conv").kernel.numpy(), before)
