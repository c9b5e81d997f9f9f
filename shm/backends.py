"""Runners: one call for the SHM inference model in every format `shm.export` writes.

A runner takes a batch of RGB float32 images in [0, 1], (B, H, W, 3), and returns numpy arrays
`{"alpha": (B, H, W, 1), "trimap": (B, H, W, 3)}`. `runner.input_size` is the fixed (H, W) the
model was exported at, or None when it takes any valid size (a dynamic-size `.keras` model).
TFLite runs on LiteRT (`ai_edge_litert`, XNNPACK), ONNX on onnxruntime's CPU provider; neither
imports TensorFlow, so a deployment of those formats needs only that runtime and numpy.

Example:
    from shm.backends import load_backend
    runner = load_backend("exports/shm_lite.tflite", num_threads=2)   # backend from the suffix
    outputs = runner(images)            # {"alpha": (B, 320, 320, 1), "trimap": (B, 320, 320, 3)}
"""

from __future__ import annotations

import abc
import os
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

BACKENDS = ("keras", "savedmodel", "tflite", "onnx")
OUTPUT_NAMES = ("alpha", "trimap")
# The one signature every exported graph has (SavedModel, TFLite); ONNX names its input the same.
SIGNATURE_NAME = "serving_default"
INPUT_NAME = "image"
_SUFFIXES = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}
# What training writes (`best.weights.h5`): weights only, loaded into the preset's model.
CHECKPOINT_SUFFIX = ".weights.h5"
# Formats whose loading runs the file's own operations (file I/O included), so only trusted files
# are loaded. .keras loads in Keras' safe mode (no Python code, only registered layers), .tflite and
# .onnx hold operators of a fixed set without file or system access: see docs/inference.md.
UNTRUSTED_FORMATS = ("savedmodel",)


class ModelFileError(ValueError):
    """A model file that is missing, unreadable, of another format than the backend asked for, or
    not an SHM inference model; the one-line message names it. `shm.export` and `shm.inference`
    raise it too: every SHM model file is loaded and checked here."""


class Runner(abc.ABC):
    """The SHM inference model behind one backend; see the module docstring for the call contract."""

    backend: str
    input_size: tuple[int, int] | None

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"{self.backend} runner: expected images (B, H, W, 3), got shape {images.shape}")
        if self.input_size is not None and tuple(images.shape[1:3]) != self.input_size:
            height, width = self.input_size
            raise ValueError(f"{self.backend} runner: this model takes {height}x{width} images, "
                             f"got {images.shape[1]}x{images.shape[2]}")
        outputs = self._run(np.ascontiguousarray(images, dtype=np.float32))
        return {name: np.asarray(outputs[name], dtype=np.float32) for name in OUTPUT_NAMES}

    @abc.abstractmethod
    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs of a checked float32 batch, at least the keys of OUTPUT_NAMES."""


def _fixed_size(height, width) -> tuple[int, int] | None:
    """(H, W) when both are known positive ints, else None (dynamic)."""
    if height is None or width is None or int(height) <= 0 or int(width) <= 0:
        return None
    return int(height), int(width)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def check_is_shm(model: "keras.Model", name: str) -> None:
    """Raise `ModelFileError` unless `model` takes (B, H, W, 3) images and returns a dict with
    `alpha` and `trimap` (an SHM model, or its inference part)."""
    try:
        outputs, input_shape = model.output, model.input_shape
    except (AttributeError, ValueError):  # subclassed models without a graph have neither
        outputs, input_shape = None, None
    if not isinstance(outputs, dict) or not set(OUTPUT_NAMES) <= outputs.keys() \
            or not isinstance(input_shape, tuple) or len(input_shape) != 4 or input_shape[-1] != 3:
        raise ModelFileError(f"{name}: a Keras model ({model.name}) but not Semantic Human Matting "
                             "(expected images (batch, H, W, 3) in, a dict with 'alpha' and 'trimap' out)")


def load_shm_model(path: str | os.PathLike, preset: str | None = None) -> "keras.Model":
    """A whole SHM model saved as `.keras`; `ModelFileError` naming the file if it is not one.

    With `preset`, `path` may instead be a training checkpoint (`combined_model.py`'s
    `best.weights.h5`): the preset's model is built and the weights loaded into it.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if path.name.endswith(CHECKPOINT_SUFFIX):
        if preset is None:
            raise ModelFileError(f"{path}: a training checkpoint (weights only): give the preset it was trained "
                                 f"with (--preset NAME), or export it once: python export.py "
                                 f"--weights {path} --preset NAME --format onnx --dynamic-size --output shm.onnx")
        from shm.console import quiet_tensorflow

        quiet_tensorflow()
        from models.shm import SemanticHumanMatting
        from models.weights import load_weights

        model = SemanticHumanMatting.from_preset(preset)
        try:
            load_weights(model, path)
        except Exception as error:  # Keras raises many types for a file of another model
            raise ModelFileError(f"{path}: not weights of the {preset} SHM model; give --preset the one it was "
                                 f"trained with ({_first_line(error)})") from None
        return model
    if path.suffix != ".keras" or not path.is_file():
        raise ModelFileError(f"{path}: not a .keras file; expected a whole SHM model saved with "
                             "model.save('NAME.keras')")
    if not zipfile.is_zipfile(path):
        # Keras itself would say "File not found" for a file that exists.
        raise ModelFileError(f"{path}: cannot load as a Keras model (a .keras file is a zip archive and this "
                             "one is not: corrupt, or another format renamed)")
    from shm.console import quiet_tensorflow

    quiet_tensorflow()
    import keras

    import models.shm  # noqa: F401  registers the custom layers and models for loading
    try:
        with warnings.catch_warnings():
            # Keras 3.15 warns for every nested functional model's `_operations_by_depth` dict, which
            # holds no weights (tests/test_shm.py and test_export.py prove exact round trips).
            warnings.filterwarnings("ignore", message="Skipping nested container", category=UserWarning)
            model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a corrupt or foreign archive
        raise ModelFileError(f"{path}: cannot load as a Keras model ({_first_line(error)})") from None
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"{path}: holds a {type(model).__name__}, not a Keras model")
    check_is_shm(model, str(path))
    return model


class FrozenInference:
    """`model(x, training=False)` for inputs of one shape, as a graph whose weights are constants
    (`models.frozen.freeze`): the fastest way TensorFlow runs our networks on CPU (docs/benchmarks.md,
    speed study). The graph holds a copy of the weights; `input_shape` may leave the batch None.
    Calling returns the model's outputs (dict or tensor)."""

    def __init__(self, model: "keras.Model", input_shape: tuple[int | None, ...]):
        from models.frozen import freeze

        self._function, self._structure = freeze(model, input_shape)

    def __call__(self, x):
        import tensorflow as tf

        return tf.nest.pack_sequence_as(self._structure, self._function(tf.convert_to_tensor(x, tf.float32)))


class KerasRunner(Runner):
    """A Keras SHM model, run as one frozen graph per input size (`FrozenInference`: faster than a
    plain `tf.function`). A graph of unknown H, W does not trace in Keras 3.15 (`keras.ops.image.resize`
    checks its size with a Python `if`), hence one per size; each holds a copy of the weights, so
    the `MAX_GRAPHS` most recently used sizes are kept.

    `live_weights=True` (a model being trained, e.g. the photo validation after each epoch): one
    `tf.function` per size that reads the model's variables as they are at each call. It is traced
    once per size for the whole run instead of frozen again after every weight update, and holds
    no copy of the weights, so every size is kept."""

    backend = "keras"
    MAX_GRAPHS = 4

    def __init__(self, model: "keras.Model", live_weights: bool = False):
        check_is_shm(model, model.name)
        self.model = model
        self.live_weights = live_weights
        self.input_size = _fixed_size(*model.input_shape[1:3])
        self._graphs: dict[tuple[int, int], object] = {}

    def _graph(self, height: int, width: int):
        import tensorflow as tf

        key = (height, width)
        if self.live_weights:
            if key not in self._graphs:
                model = self.model
                self._graphs[key] = tf.function(lambda x: model(x, training=False)).get_concrete_function(
                    tf.TensorSpec((None, height, width, 3), tf.float32))
            return self._graphs[key]
        graph = self._graphs.pop(key, None) or FrozenInference(self.model, (None, height, width, 3))
        self._graphs[key] = graph  # most recently used last
        if len(self._graphs) > self.MAX_GRAPHS:
            self._graphs.pop(next(iter(self._graphs)))
        return graph

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {name: tensor.numpy() for name, tensor in self._graph(*images.shape[1:3])(images).items()}


class SavedModelRunner(Runner):
    """A SavedModel directory written by `shm.export` (signature `serving_default`)."""

    backend = "savedmodel"

    def __init__(self, path: str | os.PathLike):
        from shm.console import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        try:
            self._function = tf.saved_model.load(str(path)).signatures[SIGNATURE_NAME]
        except Exception as error:  # TF raises many types for a foreign or corrupt directory
            raise ModelFileError(f"{path}: cannot load as a SavedModel with a {SIGNATURE_NAME!r} "
                                 f"signature ({_first_line(error)})") from None
        _, keyword_specs = self._function.structured_input_signature
        _check_export_names(path, "a SavedModel", keyword_specs, self._function.structured_outputs)
        self.input_size = _fixed_size(*keyword_specs[INPUT_NAME].shape[1:3])

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {name: tensor.numpy() for name, tensor in self._function(**{INPUT_NAME: images}).items()}


def _check_export_names(path, kind: str, input_names, output_names) -> None:
    """An exported file must take exactly the image input and give at least alpha and trimap."""
    if list(input_names) != [INPUT_NAME] or not set(OUTPUT_NAMES) <= set(output_names):
        raise ModelFileError(f"{path}: {kind} but not an SHM export (expected input {INPUT_NAME!r}, "
                             f"outputs {OUTPUT_NAMES})")


class TFLiteRunner(Runner):
    """A `.tflite` file on LiteRT with the XNNPACK delegate (LiteRT's default on CPU)."""

    backend = "tflite"

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelFileError(f"{path}: running .tflite needs the ai-edge-litert package "
                                 "(pip install -r requirements.txt)") from None
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=num_threads or os.cpu_count())
            self._signature = interpreter.get_signature_runner(SIGNATURE_NAME)
        except Exception as error:  # LiteRT raises ValueError / RuntimeError for foreign files
            raise ModelFileError(f"{path}: cannot load as a TFLite model with a {SIGNATURE_NAME!r} "
                                 f"signature ({_first_line(error)})") from None
        details = self._signature.get_input_details()
        _check_export_names(path, "a TFLite model", details, self._signature.get_output_details())
        self._interpreter = interpreter  # the signature runner needs it alive
        self.input_size = _fixed_size(*details[INPUT_NAME]["shape_signature"][1:3])

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        # The signature runner resizes the batch dimension itself when it changes.
        return self._signature(**{INPUT_NAME: images})


class OnnxRunner(Runner):
    """A `.onnx` file on onnxruntime's CPU execution provider."""

    backend = "onnx"

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise ModelFileError(f"{path}: running .onnx needs the onnxruntime package "
                                 "(pip install -r requirements.txt)") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or os.cpu_count()
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for foreign files
            raise ModelFileError(f"{path}: cannot load as an ONNX model ({_first_line(error)})") from None
        inputs = self._session.get_inputs()
        _check_export_names(path, "an ONNX model", [tensor.name for tensor in inputs],
                            [output.name for output in self._session.get_outputs()])
        height, width = inputs[0].shape[1:3]
        # Symbolic dimensions come back as strings.
        self.input_size = _fixed_size(*(side if isinstance(side, int) else None for side in (height, width)))

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(OUTPUT_NAMES, self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})))


def check_num_threads(num_threads: int | None) -> None:
    """`ValueError` unless `num_threads` is None (every core) or at least 1."""
    if num_threads is not None and (isinstance(num_threads, bool) or int(num_threads) != num_threads
                                    or num_threads < 1):
        raise ValueError(f"threads must be a whole number of at least 1, got {num_threads}")


def thread_count(text: str) -> int:
    """argparse type of `--threads`: refused before any work when it is not a whole number >= 1."""
    import argparse

    try:
        value = int(text)
        check_num_threads(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}") from None
    return value


def backend_of(path: str | os.PathLike) -> str:
    """The backend a path's format needs: from the suffix, or `savedmodel` for a SavedModel directory."""
    path = Path(path)
    if path.name.endswith(CHECKPOINT_SUFFIX):
        return "keras"
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise ModelFileError(f"{path}: a directory without saved_model.pb, so not a SavedModel")
    if path.suffix in _SUFFIXES:
        return _SUFFIXES[path.suffix]
    raise ModelFileError(f"{path}: unknown model format; expected .keras, .tflite, .onnx, a SavedModel directory "
                         f"or a training checkpoint *{CHECKPOINT_SUFFIX}")


def load_backend(path_or_model: "str | os.PathLike | keras.Model", backend: str | None = None,
                 num_threads: int | None = None, trust_savedmodel: bool = False,
                 preset: str | None = None) -> Runner:
    """A runner for a Keras model, or for a model file: `.keras`, a SavedModel directory,
    `.tflite`, `.onnx`, or with `preset` a training checkpoint `*.weights.h5` (run on keras).
    `backend`: one of BACKENDS, by default the one the path's format needs.
    `num_threads`: threads of the TFLite / ONNX runtimes (default: every core); Keras and
    SavedModel use TensorFlow's own thread settings. A SavedModel is a program (its graph may
    read, write and delete files): it is refused unless `trust_savedmodel` (see `UNTRUSTED_FORMATS`)."""
    if not isinstance(path_or_model, (str, os.PathLike)):
        if backend not in (None, "keras"):
            raise ValueError(f"a Keras model runs on the keras backend, not {backend!r}")
        return KerasRunner(path_or_model)
    check_num_threads(num_threads)
    path = Path(path_or_model)
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    format_backend = backend_of(path)
    if backend is not None and backend != format_backend:
        raise ModelFileError(f"{path}: a model for the {format_backend} backend, not the {backend} one")
    if format_backend == "keras":
        return KerasRunner(load_shm_model(path, preset))
    if format_backend in UNTRUSTED_FORMATS and not trust_savedmodel:
        raise ModelFileError(f"{path}: a SavedModel runs whatever operations its graph holds, file reads and "
                             "writes included; load it only if you made it or trust who did "
                             "(--trust-savedmodel), or use a .onnx / .tflite / .keras export instead")
    if format_backend == "savedmodel":
        return SavedModelRunner(path)
    if format_backend == "tflite":
        return TFLiteRunner(path, num_threads=num_threads)
    return OnnxRunner(path, num_threads=num_threads)
