"""load_ade20k_weights: Keras 2 `save_weights` h5 files like the public pspnet50_ade20k.h5."""

import logging

import h5py
import numpy as np
import pytest

from models.pspnet50 import build_pspnet50
from models.weights import WeightsError, load_ade20k_weights
from pspnet50_fixture import deterministic_weights, load_layout


def write_keras2_h5(path, layers):
    """Write `[(layer name, [(weight name, array)])]` the way Keras 2's `save_weights` lays out an h5."""
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        file.attrs["backend"] = b"tensorflow"
        file.attrs["keras_version"] = b"2.15.0"
        for name, weights in layers:
            group = file.create_group(name)
            group.attrs["weight_names"] = np.array([weight_name.encode() for weight_name, _ in weights])
            for weight_name, array in weights:
                group.create_dataset(weight_name, data=array)


@pytest.fixture(scope="module")
def layout():
    return load_layout()


@pytest.fixture(scope="module")
def ade20k_layers(layout):
    """The 150-class file's layers with the fixture's deterministic weights, as `write_keras2_h5` takes them."""
    weights = deterministic_weights(layout)
    return [(layer["name"], [(weight_name, array) for (weight_name, _), array in
                             zip(layer["weights"], weights[layer["name"]])]) for layer in layout]


@pytest.fixture(scope="module")
def tnet():
    return build_pspnet50(n_classes=3)


def test_every_layer_but_the_classifier_loads_into_a_3_class_tnet(tmp_path, ade20k_layers, tnet, caplog):
    # The public file also lists weightless layers (input, activations) with no weight names.
    path = tmp_path / "pspnet50_ade20k.h5"
    write_keras2_h5(path, [("input_1", []), ("activation_1", [])] + ade20k_layers)
    classifier_before = [w.copy() for w in tnet.get_layer("conv6").get_weights()]
    with caplog.at_level(logging.INFO, logger="models.weights"):
        report = load_ade20k_weights(tnet, path)
    assert report.loaded == [name for name, _ in ade20k_layers if name != "conv6"]
    assert list(report.skipped) == ["conv6"] and "(1, 1, 512, 150)" in report.skipped["conv6"]
    for name, weights in ade20k_layers[:-1]:
        for ours, (_, theirs) in zip(tnet.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(ours, theirs)
    for ours, before in zip(tnet.get_layer("conv6").get_weights(), classifier_before):
        np.testing.assert_array_equal(ours, before)
    assert "loaded 120 layers, skipped 1" in caplog.text and "conv6" in caplog.text


def test_missing_file_is_named(tmp_path, tnet):
    with pytest.raises(WeightsError, match="nowhere.h5: weights file not found"):
        load_ade20k_weights(tnet, tmp_path / "nowhere.h5")


def test_truncated_file_is_named(tmp_path, ade20k_layers, tnet):
    path = tmp_path / "truncated.h5"
    write_keras2_h5(path, ade20k_layers[:6])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated.h5: not a readable Keras 2 weights h5"):
        load_ade20k_weights(tnet, path)


def test_a_file_that_is_not_hdf5_is_named(tmp_path, tnet):
    path = tmp_path / "notes.h5"
    path.write_text("not weights")
    with pytest.raises(WeightsError, match="notes.h5: not a readable Keras 2 weights h5"):
        load_ade20k_weights(tnet, path)


def test_h5_without_layer_names_is_refused(tmp_path, tnet):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("kernel", data=np.zeros(3))
    with pytest.raises(WeightsError, match="plain.h5: no 'layer_names' attribute"):
        load_ade20k_weights(tnet, path)


def test_weights_of_another_network_are_refused(tmp_path, tnet):
    path = tmp_path / "vgg.h5"
    write_keras2_h5(path, [("block1_conv1", [("block1_conv1/kernel:0", np.zeros((3, 3, 3, 64), np.float32))])])
    with pytest.raises(WeightsError, match="vgg.h5: no layer in common .* block1_conv1"):
        load_ade20k_weights(tnet, path)


def test_wrong_backbone_shapes_are_refused_and_nothing_is_assigned(tmp_path, ade20k_layers, tnet):
    path = tmp_path / "other_stem.h5"
    stem_bn = ade20k_layers[1]
    wide_stem = ("conv1_1_3x3_s2", [("conv1_1_3x3_s2/kernel:0", np.ones((3, 3, 4, 64), np.float32))])
    # The BN comes first in the file: it passes its check before the stem fails.
    write_keras2_h5(path, [stem_bn, wide_stem] + ade20k_layers[2:])
    bn_before = [w.copy() for w in tnet.get_layer("conv1_1_3x3_s2_bn").get_weights()]
    bn_before[0] += 1.0  # make the file's BN differ from the model's, so an assignment would show
    tnet.get_layer("conv1_1_3x3_s2_bn").set_weights(bn_before)
    with pytest.raises(WeightsError, match=r"other_stem.h5: layer 'conv1_1_3x3_s2' has weight shapes \[\(3, 3, 4, 64\)\]"):
        load_ade20k_weights(tnet, path)
    np.testing.assert_array_equal(tnet.get_layer("conv1_1_3x3_s2_bn").get_weights()[0], bn_before[0])


def test_file_missing_backbone_layers_is_refused(tmp_path, ade20k_layers, tnet):
    path = tmp_path / "stem_only.h5"
    write_keras2_h5(path, ade20k_layers[:6])
    # 121 weighted layers, 6 in the file, and the classifier may be absent.
    with pytest.raises(WeightsError, match="stem_only.h5: 114 layers of the model are not in the file \\(conv2_1_1x1_reduce, "):
        load_ade20k_weights(tnet, path)


def test_file_with_layers_the_model_lacks_is_refused(tmp_path, ade20k_layers, tnet):
    path = tmp_path / "pspnet101.h5"
    deeper = ("conv4_7_1x1_reduce", [("conv4_7_1x1_reduce/kernel:0", np.zeros((1, 1, 1024, 256), np.float32))])
    write_keras2_h5(path, ade20k_layers + [deeper])
    with pytest.raises(WeightsError, match="pspnet101.h5: 1 layers of the file are not in the model"):
        load_ade20k_weights(tnet, path)
