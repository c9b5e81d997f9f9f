"""Shared by the backbone tests: random PyTorch-layout state dicts and the Keras variables they fill."""

import keras
import numpy as np


def add_conv_bn(state: dict, rng: np.random.Generator, conv: str, bn: str, shape: tuple[int, ...]) -> None:
    """A bias-free conv `conv.weight` of PyTorch `shape` and the BatchNorm `bn` of its outputs."""
    state[f"{conv}.weight"] = rng.standard_normal(shape).astype(np.float32)
    for name in ("weight", "bias", "running_mean", "running_var"):
        state[f"{bn}.{name}"] = rng.standard_normal(shape[0]).astype(np.float32)


def add_classifier(state: dict, rng: np.random.Generator, module: str) -> None:
    state[f"{module}.weight"] = rng.standard_normal((1000, 1280)).astype(np.float32)
    state[f"{module}.bias"] = rng.standard_normal(1000).astype(np.float32)


def variable_shapes(model: keras.Model) -> dict[str, tuple[int, ...]]:
    """`{"layer/variable": shape}` of every variable, the keys of a converted weights file."""
    return {f"{layer.name}/{variable.name}": tuple(variable.shape) for layer in model.layers
            for variable in layer.weights}


def assert_every_file_array_loaded(model: keras.Model, arrays) -> None:
    """Each variable of `model` holds exactly its array of the converted file, and every array is used."""
    for key in variable_shapes(model):
        layer_name, variable_name = key.split("/")
        variable = next(v for v in model.get_layer(layer_name).weights if v.name == variable_name)
        np.testing.assert_array_equal(variable.numpy(), arrays[key], err_msg=key)
    assert set(variable_shapes(model)) == set(arrays.files)
