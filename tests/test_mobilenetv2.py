"""models.mobilenetv2 + the ImageNet MobileNetV2 section of models.weights: torchvision-exact features."""

from pathlib import Path

import keras
import numpy as np
import pytest

from models.mobilenetv2 import MobileNetV2, block_specs
from models.weights import (
    MOBILENETV2_IMAGENET_PATH,
    WeightsError,
    convert_torchvision_mobilenetv2,
    load_mobilenetv2_imagenet,
)

FIXTURE = Path(__file__).parent / "fixtures" / "mobilenetv2" / "reference.npz"
STRIDES = ("stride2", "stride4", "stride8", "stride16", "stride32")


def imagenet_classifier(backbone: MobileNetV2) -> keras.layers.Dense:
    """torchvision's classifier (average pooling, then the 1000-class `classifier.1`) with the file's weights."""
    arrays = np.load(MOBILENETV2_IMAGENET_PATH)
    dense = keras.layers.Dense(1000, name="classifier")
    dense.build((None, 1280))
    dense.set_weights([arrays["classifier/kernel"], arrays["classifier/bias"]])
    return dense


@pytest.fixture(scope="module")
def backbone():
    model = MobileNetV2(input_size=224)
    report = load_mobilenetv2_imagenet(model)
    return model, report


def test_features_and_logits_match_torchvision(backbone):
    model, _ = backbone
    reference = np.load(FIXTURE)
    outputs = model(reference["x"], training=False)
    for stride in STRIDES:
        np.testing.assert_allclose(outputs[stride][:1].numpy(), reference[stride], rtol=0, atol=1e-3, err_msg=stride)
    logits = imagenet_classifier(model)(keras.ops.mean(outputs["stride32"], axis=(1, 2))).numpy()
    np.testing.assert_allclose(logits, reference["logits"], rtol=0, atol=1e-3)
    # chelsea is a cat (tabby 281 .. Egyptian cat 285), coffee an espresso (967).
    predicted = logits.argmax(axis=1)
    assert 281 <= predicted[0] <= 285 and predicted[2] == 967


def test_loading_puts_exactly_the_file_values_into_every_variable(backbone):
    model, report = backbone
    arrays = np.load(MOBILENETV2_IMAGENET_PATH)
    seen = set()
    for layer in model.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{variable.name}"
            np.testing.assert_array_equal(variable.numpy(), arrays[key], err_msg=key)
            seen.add(key)
    assert seen == set(arrays.files) - {"classifier/kernel", "classifier/bias"}  # all but the classifier
    assert set(report.skipped) == {"classifier"} and len(report.loaded) == 52 * 2  # 52 conv+BN pairs


def test_cut_backbone_reports_the_unused_layers_and_ends_at_320_channels():
    model = MobileNetV2(input_size=64, include_head=False)
    report = load_mobilenetv2_imagenet(model)
    assert set(report.skipped) == {"head_conv", "head_bn", "classifier"}
    outputs = model(np.zeros((1, 64, 64, 3), np.float32))
    shapes = {stride: tuple(outputs[stride].shape) for stride in STRIDES}
    assert shapes == {"stride2": (1, 32, 32, 16), "stride4": (1, 16, 16, 24), "stride8": (1, 8, 8, 32),
                      "stride16": (1, 4, 4, 96), "stride32": (1, 2, 2, 320)}


def _torchvision_state(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random arrays under torchvision's MobileNetV2 names and PyTorch layouts, derived independently here."""
    state = {}

    def conv_bn(conv: str, bn: str, shape: tuple[int, ...]):
        state[f"{conv}.weight"] = rng.standard_normal(shape).astype(np.float32)
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[f"{bn}.{name}"] = rng.standard_normal(shape[0]).astype(np.float32)
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
    state["classifier.1.weight"] = rng.standard_normal((1000, 1280)).astype(np.float32)
    state["classifier.1.bias"] = rng.standard_normal(1000).astype(np.float32)
    return state


def test_conversion_moves_pytorch_layouts_into_keras_layouts():
    state = _torchvision_state(np.random.default_rng(0))
    converted = convert_torchvision_mobilenetv2(state)
    # Conv (out, in, kh, kw) -> (kh, kw, in, out): stem output 5, input channel 1, tap (0, 2).
    assert converted["stem_conv/kernel"][0, 2, 1, 5] == state["features.0.0.weight"][5, 1, 0, 2]
    # Depthwise (C, 1, kh, kw) -> (kh, kw, C, 1), in a block with and without expansion.
    assert converted["block1_dwconv/kernel"][2, 1, 7, 0] == state["features.1.conv.0.0.weight"][7, 0, 2, 1]
    assert converted["block5_dwconv/kernel"][0, 1, 100, 0] == state["features.5.conv.1.0.weight"][100, 0, 0, 1]
    assert converted["block5_project_conv/kernel"][0, 0, 150, 3] == state["features.5.conv.2.weight"][3, 150, 0, 0]
    np.testing.assert_array_equal(converted["block5_project_bn/moving_variance"], state["features.5.conv.3.running_var"])
    np.testing.assert_array_equal(converted["head_bn/gamma"], state["features.18.1.weight"])
    np.testing.assert_array_equal(converted["classifier/kernel"], state["classifier.1.weight"].T)
    # Every converted array fits the Keras model it is meant for (the backbone, then the classifier).
    model = MobileNetV2(input_size=32)
    expected = {f"{layer.name}/{v.name}": tuple(v.shape) for layer in model.layers for v in layer.weights}
    expected.update({"classifier/kernel": (1280, 1000), "classifier/bias": (1000,)})
    assert {key: value.shape for key, value in converted.items()} == expected


def test_conversion_refuses_another_network():
    state = _torchvision_state(np.random.default_rng(0))
    with pytest.raises(WeightsError, match="other.npz: no array 'classifier.1.bias'"):
        convert_torchvision_mobilenetv2({k: v for k, v in state.items() if k != "classifier.1.bias"}, "other.npz")
    with pytest.raises(WeightsError, match="unexpected arrays"):
        convert_torchvision_mobilenetv2({**state, "features.19.0.weight": np.zeros(1)})


@pytest.fixture(scope="module")
def small_backbone():
    return MobileNetV2(input_size=32, include_head=False)


def test_missing_file_is_a_clear_error(small_backbone, tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(WeightsError, match=f"{missing}: weights file not found"):
        load_mobilenetv2_imagenet(small_backbone, missing)


def test_corrupt_file_is_a_clear_error(small_backbone, tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(MOBILENETV2_IMAGENET_PATH.read_bytes()[:5000])  # truncated download
    with pytest.raises(WeightsError, match=f"{corrupt}: not a readable .npz"):
        load_mobilenetv2_imagenet(small_backbone, corrupt)


def test_unconverted_or_mismatching_file_is_a_clear_error(small_backbone, tmp_path):
    torch_named = tmp_path / "torch.npz"
    np.savez(torch_named, **{"features.0.0.weight": np.zeros((32, 3, 3, 3), np.float32)})
    with pytest.raises(WeightsError, match=f"{torch_named}: not our converted MobileNetV2.*convert_mobilenetv2.py"):
        load_mobilenetv2_imagenet(small_backbone, torch_named)
    arrays = dict(np.load(MOBILENETV2_IMAGENET_PATH))
    arrays["block3_dwconv/kernel"] = arrays["block3_dwconv/kernel"][:, :, :10]
    wrong_shape = tmp_path / "wrong.npz"
    np.savez(wrong_shape, **arrays)
    before = small_backbone.get_layer("stem_conv").kernel.numpy()
    with pytest.raises(WeightsError, match=r"wrong.npz: 'block3_dwconv/kernel' has shape \(3, 3, 10, 1\)"):
        load_mobilenetv2_imagenet(small_backbone, wrong_shape)
    # Nothing is half-loaded: the check runs before any assignment.
    np.testing.assert_array_equal(small_backbone.get_layer("stem_conv").kernel.numpy(), before)
