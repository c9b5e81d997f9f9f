"""M-Net: pooling with argmax / unpooling against numpy, the network's shape, HED initialisation."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from models.mnet import HED_RGB_MEAN, MaxPoolWithArgmax, MaxUnpool, MNet, build_mnet, mnet_encoder_conv_names
from models.weights import WeightsError, load_hed_encoder, read_hed_convs

TINY_WIDTHS = ((4,), (4,), (8,), (8,), (8,))


def numpy_first_argmax_positions(x):
    """(B, H/2, W/2, C) index 0..3 (row-major in the 2x2 window) of the first max of each window."""
    b, h, w, c = x.shape
    windows = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, c, 4)
    return windows.argmax(axis=-1)  # numpy's argmax returns the first of tied maxima


def numpy_unpool(values, positions):
    b, h, w, c = values.shape
    out = np.zeros((b, 2 * h, 2 * w, c), values.dtype)
    for bi, i, j, ci in np.ndindex(b, h, w, c):
        dy, dx = divmod(positions[bi, i, j, ci], 2)
        out[bi, 2 * i + dy, 2 * j + dx, ci] = values[bi, i, j, ci]
    return out


def tiny_tensor_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, size=(2, 4, 6, 3)).astype("float32")  # many ties among 5 values
    x[0, 0:2, 0:2, 0] = 0.0  # a whole window of ReLU zeros
    x[1, 2:4, 2:4, 1] = [[1.0, 3.0], [3.0, 3.0]]  # the max at 3 positions: the first (top right) wins
    return x


def test_pool_gives_max_and_first_argmax_one_hot():
    x = tiny_tensor_with_ties()
    pooled, mask = MaxPoolWithArgmax()(x)
    positions = numpy_first_argmax_positions(x)
    expected_pooled = x.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(pooled.numpy(), expected_pooled)
    mask = mask.numpy().reshape(2, 2, 3, 4, 3)  # space_to_depth layout: (window position, channel)
    np.testing.assert_array_equal(mask.sum(axis=3), np.ones((2, 2, 3, 3)))
    np.testing.assert_array_equal(mask.argmax(axis=3), positions)
    assert positions[0, 0, 0, 0] == 0 and positions[1, 1, 1, 1] == 1


def test_unpool_matches_numpy_reference_with_ties():
    x = tiny_tensor_with_ties()
    _, mask = MaxPoolWithArgmax()(x)
    values = np.random.default_rng(1).normal(size=(2, 2, 3, 3)).astype("float32")
    unpooled = MaxUnpool()([values, mask]).numpy()
    np.testing.assert_array_equal(unpooled, numpy_unpool(values, numpy_first_argmax_positions(x)))


def test_pool_gradient_reaches_only_the_first_argmax():
    x = tf.constant(tiny_tensor_with_ties())
    upstream = np.random.default_rng(2).normal(size=(2, 2, 3, 3)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        pooled, _ = MaxPoolWithArgmax()(x)
        loss = tf.reduce_sum(pooled * upstream)
    gradient = tape.gradient(loss, x).numpy()
    # tf.maximum splits ties' gradient equally between its two arguments: compare the sum
    # over each window, and that no gradient leaves the window's max value.
    window_sums = gradient.reshape(2, 2, 2, 3, 2, 3).sum(axis=(2, 4))
    np.testing.assert_allclose(window_sums, upstream, rtol=1e-6)
    is_window_max = x.numpy() == np.repeat(np.repeat(x.numpy().reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4)), 2, 1), 2, 2)
    assert np.all(gradient[~is_window_max] == 0)


def test_build_mnet_paper_shape():
    model = build_mnet(input_size=32)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    encoder = [layer for layer in convs if layer.name.startswith("block")]
    assert [layer.name for layer in encoder] == mnet_encoder_conv_names()
    assert [layer.filters for layer in encoder] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert all(layer.kernel_size == (3, 3) and layer.use_bias for layer in encoder)
    assert len(convs) - len(encoder) == 6
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 13 + 5
    assert sum(isinstance(layer, MaxPoolWithArgmax) for layer in model.layers) == 4
    assert sum(isinstance(layer, MaxUnpool) for layer in model.layers) == 4
    assert model.input_shape == (None, 32, 32, 6) and model.output_shape == (None, 32, 32, 1)


def test_mnet_dynamic_size_output_in_unit_range():
    model = build_mnet(input_size=None, encoder_widths=TINY_WIDTHS, decoder_kernel_size=3)
    x = np.random.default_rng(3).random((2, 48, 80, 6)).astype("float32")
    alpha = model(x).numpy()
    assert alpha.shape == (2, 48, 80, 1)
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0


@pytest.mark.parametrize("kwargs", [{"input_size": 40}, {"encoder_widths": ((4,), (4,), (4,), (4,))}])
def test_mnet_rejects_bad_configs(kwargs):
    with pytest.raises(ValueError):
        build_mnet(**kwargs)


def test_mnet_config_is_its_arguments_and_round_trips(tmp_path):
    model = MNet(input_size=32, encoder_widths=TINY_WIDTHS, decoder_kernel_size=3, name="slim")
    assert model.get_config() == {"name": "slim", "trainable": True, "input_size": 32,
                                  "encoder_widths": [[4], [4], [8], [8], [8]], "decoder_kernel_size": 3}
    assert MNet.from_config(model.get_config()).get_config() == model.get_config()
    x = np.random.default_rng(4).random((1, 32, 32, 6)).astype("float32")
    path = tmp_path / "mnet.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, MNet) and restored.get_config() == model.get_config()
    np.testing.assert_array_equal(restored(x), model(x))


@pytest.fixture(scope="module")
def hed_mnet():
    model = build_mnet(input_size=32)
    report = load_hed_encoder(model)
    return model, report


def test_hed_encoder_holds_hed_weights_exactly(hed_mnet):
    model, report = hed_mnet
    convs = read_hed_convs()
    assert report.loaded == mnet_encoder_conv_names()
    first = model.get_layer("block1_conv1_conv")
    np.testing.assert_array_equal(first.kernel.numpy()[:, :, :3, :], convs[0][0][:, :, ::-1, :])
    np.testing.assert_array_equal(first.kernel.numpy()[:, :, 3:, :], 0.0)
    for name, (kernel, bias) in zip(mnet_encoder_conv_names(), convs):
        layer = model.get_layer(name)
        if name != "block1_conv1_conv":
            np.testing.assert_array_equal(layer.kernel.numpy(), kernel)
        np.testing.assert_array_equal(layer.bias.numpy(), bias)


def test_hed_first_conv_equals_hed_on_its_own_preprocessing(hed_mnet):
    model, _ = hed_mnet
    rng = np.random.default_rng(5)
    rgb = rng.random((1, 32, 32, 3)).astype("float32")
    trimap = rng.random((1, 32, 32, 3)).astype("float32")
    first_conv = keras.Model(model.input, model.get_layer("block1_conv1_conv").output)
    ours = first_conv(np.concatenate([rgb, trimap], axis=-1)).numpy()
    kernel, bias = read_hed_convs()[0]
    hed_input = rgb[..., ::-1] * 255.0 - np.asarray(HED_RGB_MEAN[::-1], "float32")  # HED: BGR minus means
    expected = tf.nn.conv2d(hed_input, kernel, 1, "SAME").numpy() + bias
    np.testing.assert_allclose(ours, expected, atol=1e-3)  # values reach about 500


def test_hed_missing_or_wrong_file(tmp_path):
    model = build_mnet(input_size=32, encoder_widths=TINY_WIDTHS)
    with pytest.raises(WeightsError, match="no such HED weights file"):
        load_hed_encoder(model, tmp_path / "missing.h5")
    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("not weights")
    with pytest.raises(WeightsError, match="text.h5: not a readable HDF5"):
        load_hed_encoder(model, not_hdf5)
    other = tmp_path / "other.weights.h5"
    with h5py.File(other, "w") as f:
        f["dense/vars/0"] = np.zeros((2, 2), "float32")
    with pytest.raises(WeightsError, match="other.weights.h5: no 'block1/layers/conv2d/vars'"):
        load_hed_encoder(model, other)


def test_hed_into_slim_mnet_is_refused_without_loading_anything():
    slim_block5 = build_mnet(input_size=32, encoder_widths=((64, 64), (128, 128), (256,) * 3, (512,) * 3, (8,) * 3))
    first_kernel = slim_block5.get_layer("block1_conv1_conv").kernel.numpy()
    with pytest.raises(WeightsError, match="block5/layers/conv2d.*expects"):
        load_hed_encoder(slim_block5)
    np.testing.assert_array_equal(slim_block5.get_layer("block1_conv1_conv").kernel.numpy(), first_kernel)


def test_mnet_converts_to_tflite_builtins():
    model = build_mnet(input_size=32, encoder_widths=TINY_WIDTHS, decoder_kernel_size=3)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex / TF ops allowed
    from ai_edge_litert.interpreter import Interpreter  # tf.lite.Interpreter is deprecated

    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    x = np.random.default_rng(6).random((1, 32, 32, 6)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), model(x), atol=1e-5)
