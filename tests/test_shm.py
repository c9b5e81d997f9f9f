"""SemanticHumanMatting with tiny stand-in T-Nets: graph, resize path, weights of the stages, round trip."""

import keras
import numpy as np
import pytest

from models.mnet import build_mnet
from models.shm import SemanticHumanMatting
from training_helpers import tiny_tnet

TINY_WIDTHS = ((4,), (4,), (8,), (8,), (8,))


def tiny_mnet(input_size=None):
    return build_mnet(input_size, encoder_widths=TINY_WIDTHS, decoder_kernel_size=3)


def images(size=32, batch=2, seed=0):
    return np.random.default_rng(seed).random((batch, size, size, 3)).astype("float32")


def test_outputs_are_the_stages_fused():
    tnet, mnet = tiny_tnet(), tiny_mnet()
    model = SemanticHumanMatting(tnet, mnet, input_size=32)
    x = images()
    outputs = model(x)
    assert set(outputs) == {"trimap", "alpha_raw", "alpha"}
    trimap = tnet(x).numpy()
    alpha_raw = mnet(np.concatenate([x, trimap], axis=-1)).numpy()
    np.testing.assert_allclose(outputs["trimap"], trimap, atol=1e-6)
    np.testing.assert_allclose(outputs["alpha_raw"], alpha_raw, atol=1e-6)
    np.testing.assert_allclose(outputs["alpha"], trimap[..., 2:] + trimap[..., 1:2] * alpha_raw, atol=1e-6)
    assert model.tnet is tnet and model.mnet is mnet


def test_tnet_at_its_own_size_with_normalisation():
    tnet = tiny_tnet(24)
    model = SemanticHumanMatting(tnet, tiny_mnet(), tnet_size=24, tnet_mean=[0.5] * 3, tnet_std=[0.25] * 3)
    x = images(48, batch=1)
    trimap = model(x)["trimap"].numpy()
    assert trimap.shape == (1, 48, 48, 3)
    np.testing.assert_allclose(trimap.sum(axis=-1), 1.0, atol=1e-5)
    small = keras.ops.image.resize(x, (24, 24), interpolation="bilinear")
    expected = keras.ops.image.resize(tnet((small - 0.5) / 0.25), (48, 48), interpolation="bilinear")
    np.testing.assert_allclose(trimap, expected, atol=1e-5)


def test_stage_weights_load_through_attributes(tmp_path):
    trained_mnet = tiny_mnet()
    path = tmp_path / "stage2.weights.h5"
    trained_mnet.save_weights(path)
    model = SemanticHumanMatting(tiny_tnet(), tiny_mnet())
    x = images(seed=1)
    before = model(x)["alpha_raw"].numpy()
    model.mnet.load_weights(path)
    after = model(x)["alpha_raw"].numpy()
    expected = trained_mnet(np.concatenate([x, model.tnet(x).numpy()], axis=-1)).numpy()
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, expected, atol=1e-6)


def test_keras_round_trip(tmp_path):
    model = SemanticHumanMatting(tiny_tnet(24), tiny_mnet(), tnet_size=24, tnet_mean=[0.4] * 3, tnet_std=[0.3] * 3)
    path = tmp_path / "shm.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, SemanticHumanMatting)
    assert restored.get_config()["tnet_size"] == 24 and restored.tnet.name == "tiny_tnet"
    x = images(32, seed=2)
    for key, value in model(x).items():
        np.testing.assert_allclose(restored(x)[key], value, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"input_size": 40}, {"tnet_mean": [0.5] * 3}])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        SemanticHumanMatting(tiny_tnet(), tiny_mnet(), **kwargs)


def test_tnet_dropout_is_off_when_called_without_training():
    image = keras.Input((24, 24, 3))
    dropped = keras.layers.Dropout(0.5)(image)
    tnet = keras.Model(image, keras.layers.Conv2D(3, 3, padding="same", activation="softmax")(dropped))
    model = SemanticHumanMatting(tnet, tiny_mnet(), tnet_size=24)
    x = images(32, batch=1)
    np.testing.assert_array_equal(model(x)["trimap"], model(x)["trimap"])
