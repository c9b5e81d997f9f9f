"""The presets and SemanticHumanMatting.from_preset: settings, overrides, .keras round trips of both
presets, and the shipped model's file (saved before the M-Net was a class) loading into them."""

import ast
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import models
from models import PRESETS, build_mnet, build_shm, resolve_preset
from models.efficientnet_lite import EfficientNetLite0
from models import light_tnet
from models.light_tnet import LightTNet
from models.mnet import SIZE_MULTIPLE, MNet
from models.frozen import freeze
from models.profiling import count_flops
from models.pspnet50 import PSPNet50
from models.shm import SemanticHumanMatting
from models.weights import load_weights
from training_helpers import tiny_tnet

ROOT = Path(__file__).resolve().parents[1]


def images(size, seed=0):
    return np.random.default_rng(seed).random((1, size, size, 3)).astype("float32")


def assert_round_trip(model, path, x):
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, SemanticHumanMatting)
    expected = model(x)
    outputs = restored(x)
    for key in ("trimap", "alpha_raw", "alpha"):
        np.testing.assert_allclose(outputs[key], expected[key], atol=1e-5)
    return restored


def test_preset_settings():
    assert PRESETS["lite"]["weights"] == {"keras": "weights/shm_lite.keras", "onnx": "weights/shm_lite.onnx"}
    assert PRESETS["pspnet50"]["tnet_size"] == 473
    for settings in PRESETS.values():
        assert settings["working_size"] % settings["size_multiple"] == 0
        assert settings["default_backend"] in ("keras", "savedmodel", "tflite", "onnx")
        assert not settings["weights"] or settings["default_backend"] in settings["weights"]
        assert callable(getattr(models, settings["tnet"]))
        assert settings["size_multiple"] % SIZE_MULTIPLE == 0  # the M-Net's own multiple divides it
        if settings["tnet"] == "build_light_tnet":  # and so does the light T-Net's
            assert settings["size_multiple"] % light_tnet.SIZE_MULTIPLE == 0
        assert (settings["tnet_mean"] is None) == (settings["tnet_std"] is None)


def test_presets_table_imports_without_tensorflow():
    code = ("import sys; import models.presets; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_overrides_merge_dicts_and_reject_unknown_keys():
    settings = resolve_preset("lite", mnet_kwargs={"decoder_kernel_size": 5}, working_size=256)
    assert settings["mnet_kwargs"]["decoder_kernel_size"] == 5
    assert settings["mnet_kwargs"]["encoder_widths"] == PRESETS["lite"]["mnet_kwargs"]["encoder_widths"]
    assert settings["working_size"] == 256 and PRESETS["lite"]["working_size"] == 320
    with pytest.raises(ValueError, match="no setting 'mnet_width'"):
        resolve_preset("lite", mnet_width=2)
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_preset("big")


def test_lite_needs_multiples_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        build_shm("lite", input_size=48)


def test_lite_efficientnet_differs_from_lite_only_in_the_tnet_encoder():
    lite, efficientnet = resolve_preset("lite"), resolve_preset("lite_efficientnet")
    differing = {key for key in lite if lite[key] != efficientnet[key]}
    assert differing == {"description", "tnet_kwargs", "weights"}
    assert efficientnet["tnet_kwargs"] == {"backbone": "efficientnet_lite0", "backbone_weights": None}
    model = build_shm("lite_efficientnet", input_size=64)
    assert isinstance(model.tnet.backbone, EfficientNetLite0)
    assert model(images(64))["alpha"].shape == (1, 64, 64, 1)
    # The same override on lite builds the same T-Net.
    overridden = build_shm("lite", input_size=64, tnet_kwargs={"backbone": "efficientnet_lite0"})
    assert overridden.tnet.get_config() == model.tnet.get_config()


def test_given_stages_are_used():
    tnet, mnet = tiny_tnet(), build_mnet(None, encoder_widths=((4,), (4,), (4,), (4,), (4,)))
    model = build_shm("lite", tnet=tnet, mnet=mnet)
    assert model.tnet is tnet and model.mnet is mnet and model(images(32))["alpha"].shape == (1, 32, 32, 1)


def test_pspnet50_round_trip_with_small_mnet(tmp_path):
    # The T-Net at 41x41 instead of 473x473: the same layers and weights, a 100th of the work.
    model = build_shm("pspnet50", input_size=32, tnet_size=41, tnet_kwargs={"input_size": 41},
                      mnet_kwargs={"encoder_widths": ((4,), (4,), (4,), (4,), (4,))})
    assert isinstance(model.tnet, PSPNet50) and model.tnet.input_shape == (None, 41, 41, 3)
    restored = assert_round_trip(model, tmp_path / "pspnet50.keras", images(32))
    assert restored.preset == "pspnet50"
    assert restored.get_config()["tnet_mean"] == pytest.approx(resolve_preset("pspnet50")["tnet_mean"])


def test_count_flops_of_a_known_conv():
    image = keras.Input((8, 8, 2))
    model = keras.Model(image, keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(image))
    assert count_flops(model, (1, 8, 8, 2)) == 2 * 8 * 8 * 4 * 3 * 3 * 2  # a multiply-add counts 2


def test_the_frozen_graph_gives_the_model_s_outputs():
    """models.frozen.freeze, the graph KerasRunner runs and profiling counts: the same numbers, the
    weights copied in as constants."""
    model = build_shm("lite", input_size=64)
    x = images(64, seed=4)
    frozen = freeze(model, (None, 64, 64, 3))
    outputs = keras.tree.pack_sequence_as(frozen.outputs, frozen.function(keras.ops.convert_to_tensor(x)))
    expected = model(x, training=False)
    for key in ("trimap", "alpha_raw", "alpha"):
        np.testing.assert_allclose(outputs[key], expected[key], atol=1e-5)
    assert not frozen.function.graph.variables


def test_the_shipped_lite_file_loads_and_its_weights_round_trip_through_the_preset_model(tmp_path):
    shipped = keras.saving.load_model(ROOT / PRESETS["lite"]["weights"]["keras"], compile=False)
    assert isinstance(shipped, SemanticHumanMatting) and shipped.preset == "lite"
    shipped.save_weights(tmp_path / "shipped.weights.h5")
    # Checkpoints written while the M-Net was a functional model file it under `functional`: one
    # made so from the shipped weights still loads, through `models.weights.load_weights`.
    with h5py.File(tmp_path / "shipped.weights.h5", "r+") as file:
        groups = []
        file.visititems(lambda path, item: groups.append(path) if path.rsplit("/", 1)[-1] == "m_net" else None)
        for group in sorted(groups, key=len, reverse=True):
            file.move(group, group.rsplit("m_net", 1)[0] + "functional")
    model = SemanticHumanMatting.from_preset("lite")
    assert isinstance(model.tnet, LightTNet) and isinstance(model.mnet, MNet)
    assert model.mnet.get_layer("block1_conv1_conv").filters == 8
    with pytest.raises(ValueError):
        model.load_weights(tmp_path / "shipped.weights.h5")
    load_weights(model, tmp_path / "shipped.weights.h5")
    for loaded, saved in zip(model.weights, shipped.weights):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
    x = images(64, seed=2)
    outputs = model(x)
    assert outputs["alpha"].shape == (1, 64, 64, 1) and outputs["trimap"].shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(outputs["alpha"], shipped(x)["alpha"])
    restored = assert_round_trip(model, tmp_path / "lite.keras", x)  # in the new layout
    assert restored.preset == "lite" and isinstance(restored.mnet, MNet)


def test_models_imports_nothing_from_shm():
    imported = set()
    for path in (ROOT / "models").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {(path.name, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module))
    assert imported and not [(file, name) for file, name in imported if name.split(".")[0] == "shm"]
