"""Export the SHM inference model (image -> alpha and trimap) to Keras, SavedModel, TFLite or ONNX.

Every export is written to a temporary path, loaded back through its runner (`shm.backends`) and
compared with the Keras model on the same random images before it is renamed into place: a
float32 export whose trimap differs by `FLOAT32_TOLERANCE` or more, or whose alpha does at more
than `MAX_TIE_FLIP_FRACTION` of its pixels, is not written at all; a quantized one reports its
difference. SavedModel, TFLite and ONNX graphs have a fixed (H, W)
and a dynamic batch; `.keras` keeps the model's own input size.

Example:
    from shm.export import export_model
    report = export_model("weights/shm_lite.keras", "onnx", "exports/shm_lite.onnx")
    print(report.describe())   # path, size, max |alpha - Keras alpha|
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from shm.backends import (INPUT_NAME, OUTPUT_NAMES, SIGNATURE_NAME, KerasRunner, Runner, check_is_shm,
                          check_num_threads, load_backend, load_shm_model)
from shm.io import atomic_path, check_output_dir, temporary_prefix

if TYPE_CHECKING:
    import keras

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
QUANTIZATIONS = {"keras": (), "savedmodel": (), "tflite": ("float16", "dynamic"), "onnx": ("float16", "dynamic")}
SUFFIXES = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}
FLOAT32_TOLERANCE = 1e-3
# The M-Net's max-pooling keeps where each window's maximum was and unpooling puts values back there.
# Where two values of a window are equal up to rounding, another execution path (eager or graph,
# another CPU's kernels, another runtime) may pick the other one and move a value by a pixel: a few
# alpha pixels in 10^4 then differ by more than the tolerance (44 of 204,800 for a random lite model at
# 320x320 on an AVX2 CPU). A real export error (weights, layout, resizing, normalisation) moves most
# pixels, and moves the trimap too, which has no such argmax upstream and is checked at every pixel.
MAX_TIE_FLIP_FRACTION = 1e-3
# Opset 17 is onnxruntime-supported everywhere the requirements allow and covers every op here.
ONNX_OPSET = 17
CHECK_BATCH = 2


class ExportCheckError(ValueError):
    """A float32 export whose outputs differ from the Keras model's by the tolerance or more."""


@dataclasses.dataclass(frozen=True)
class OutputDifferences:
    """How far one run's outputs are from another's on the same images."""

    alpha: float                # max |alpha difference|
    trimap: float               # max |trimap probability difference|
    alpha_flip_fraction: float  # fraction of alpha pixels that differ by FLOAT32_TOLERANCE or more

    def describe(self) -> str:
        return (f"max |alpha - Keras| {self.alpha:.2e} ({self.alpha_flip_fraction:.3%} of pixels at "
                f"{FLOAT32_TOLERANCE:g} or more), max |trimap - Keras| {self.trimap:.2e}")

    def is_float32_exact(self) -> bool:
        """The same model up to float32 rounding and argmax ties (see MAX_TIE_FLIP_FRACTION); NaN fails."""
        return bool(self.trimap < FLOAT32_TOLERANCE and self.alpha_flip_fraction <= MAX_TIE_FLIP_FRACTION)

    @staticmethod
    def worst(differences: "list[OutputDifferences]") -> "OutputDifferences":
        return OutputDifferences(*(max(getattr(each, field.name) for each in differences)
                                   for field in dataclasses.fields(OutputDifferences)))


@dataclasses.dataclass
class ExportReport:
    """What `export_model` wrote and how far its outputs are from the Keras model's."""

    path: Path
    format: str
    quantize: str | None
    checked_sizes: tuple[tuple[int, int], ...]  # (H, W) of the check batches: the export size, then for a
    #                                              dynamic graph a second shape
    size_bytes: int
    differences: OutputDifferences  # from the Keras model, over every checked size
    dynamic_size: bool = False    # the graph takes any valid (H, W)

    @property
    def input_size(self) -> tuple[int, int]:
        """The graph's fixed size; for .keras or a dynamic graph, the size it was checked at first."""
        return self.checked_sizes[0]

    def describe(self) -> str:
        kind = f"{self.format} ({self.quantize or 'float32'})"
        sizes = " and ".join(f"{height}x{width}" for height, width in self.checked_sizes)
        checked = f"dynamic size, checked at {sizes}" if self.dynamic_size else f"checked at {sizes}"
        return f"{self.path}: {kind} {checked}, {self.size_bytes / 2**20:.2f} MiB, {self.differences.describe()}"


def model_preset(model) -> dict | None:
    """The settings of the preset `model` was built from (its config's `preset`, see
    `SemanticHumanMatting.from_preset`), or None for a model of no preset."""
    from models.presets import PRESETS
    return PRESETS.get(getattr(model, "preset", None) or "")


def size_multiple(model) -> int:
    """What each side of `model`'s input must be a multiple of: its preset's `size_multiple`, else the M-Net's."""
    preset = model_preset(model)
    if preset is not None:
        return preset["size_multiple"]
    from models.mnet import SIZE_MULTIPLE
    return SIZE_MULTIPLE


def export_input_size(model, input_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The (H, W) to export `model` at: `input_size`, else the model's fixed size, else its
    preset's working size."""
    height, width = model.input_shape[1:3]
    fixed = (height, width) if height is not None and width is not None else None
    if input_size is None:
        if fixed is not None:
            return fixed
        preset = model_preset(model)
        if preset is None:
            raise ValueError(f"model {model.name!r} has a dynamic input size and no known preset: "
                             "give the input size to export at")
        return preset["working_size"], preset["working_size"]
    input_size = (int(input_size[0]), int(input_size[1]))
    if fixed is not None and input_size != fixed:
        raise ValueError(f"model {model.name!r} takes only {fixed[0]}x{fixed[1]} images, not "
                         f"{input_size[0]}x{input_size[1]}: export it at its own size, or save a "
                         "dynamic-size model (SemanticHumanMatting.from_preset(preset) without input_size)")
    multiple = size_multiple(model)
    if min(input_size) < multiple or any(side % multiple for side in input_size):
        raise ValueError(f"input size {input_size[0]}x{input_size[1]} must be positive multiples of {multiple}")
    return input_size


def inference_function(model, input_size: tuple[int, int] | None):
    """A `tf.function` of one (None, H, W, 3) float32 argument `image` returning `alpha` and `trimap`;
    H and W are None (any size) when `input_size` is None."""
    import tensorflow as tf

    spec = tf.TensorSpec((None, *(input_size or (None, None)), 3), tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def image_to_matte(image):
        outputs = model(image, training=False)
        return {name: outputs[name] for name in OUTPUT_NAMES}

    return image_to_matte


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Like `shm.io.atomic_path` for a directory: yield an empty temporary directory beside `path`
    and move it onto `path` only if the block succeeds. An existing `path` is replaced only if it
    is empty or a previous SavedModel, so a mistyped output never deletes a folder of other files."""
    path = Path(path)
    if path.exists() and not (path.is_dir() and (not any(path.iterdir()) or (path / "saved_model.pb").is_file())):
        raise ValueError(f"{path}: exists and is not a SavedModel directory; choose another output")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=".tmp"))
    # mkdtemp creates owner-only directories; outputs get the permissions a plain mkdir would give.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o777 & ~umask)
    try:
        yield temporary
        if path.exists():
            previous = Path(tempfile.mkdtemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=".old"))
            os.replace(path, previous / path.name)
            os.replace(temporary, path)
            shutil.rmtree(previous)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def write_savedmodel(function, directory: str | os.PathLike) -> None:
    """Write `function` (a `tf.function` with an input signature, e.g. `inference_function`'s, over
    Keras layers or models) as a SavedModel with the one signature `serving_default`."""
    import keras

    archive = keras.export.ExportArchive()
    # No archive.track(model): with it every weight is stored twice, once per variable wrapper
    # (keras-team/keras#23553); the endpoint alone tracks the variables it captures, once.
    archive.add_endpoint(SIGNATURE_NAME, function)
    archive.write_out(str(directory), verbose=False)


def write_tflite(function, path: str | os.PathLike, quantize: str | None = None) -> None:
    """Write `function` (as in `write_savedmodel`) as a `.tflite` flatbuffer; `quantize`: None,
    "float16" or "dynamic"."""
    import tensorflow as tf

    # Converting through a SavedModel: TFLiteConverter.from_concrete_functions on a Keras 3 model
    # writes a graph without its weights (0.3 MiB for the lite model) whose outputs are NaN.
    with tempfile.TemporaryDirectory() as scratch:
        write_savedmodel(function, scratch)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[SIGNATURE_NAME])
        if quantize is not None:
            # Weights stored as float16 or int8; "dynamic" also runs the int8 kernels it can.
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        Path(path).write_bytes(converter.convert())


def write_onnx(function, path: str | os.PathLike, quantize: str | None = None) -> None:
    """Write `function` (as in `write_savedmodel`) as an ONNX graph (opset `ONNX_OPSET`);
    `quantize`: None, "float16" or "dynamic"."""
    import tf2onnx

    if quantize is None:
        tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=ONNX_OPSET,
                                      output_path=str(path))
        return
    import onnx

    proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=ONNX_OPSET)
    if quantize == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16
        # keep_io_types: callers still pass and get float32 arrays; casts sit at the edges.
        onnx.save(convert_float_to_float16(_omit_empty_resize_inputs(proto), keep_io_types=True), str(path))
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic
    with tempfile.TemporaryDirectory() as scratch:
        float_path = Path(scratch) / "float32.onnx"
        onnx.save(proto, str(float_path))
        quantize_dynamic(str(float_path), str(path), weight_type=QuantType.QUInt8)


def _omit_empty_resize_inputs(proto):
    """Give Resize nodes an omitted ("") roi / scales instead of tf2onnx's shared empty constant.

    The float16 converter keeps Resize in float32 and so puts a Cast in front of that constant, once
    per Resize, all with the same name (onnxruntime: "two nodes with same node name"), and a cast
    constant no longer counts as empty for Resize's shape inference. Omitted inputs mean the same.
    """
    from onnx import numpy_helper

    empty = {init.name for init in proto.graph.initializer if numpy_helper.to_array(init).size == 0}
    empty |= {node.output[0] for node in proto.graph.node if node.op_type == "Constant"
              and any(attr.name == "value" and np.asarray(numpy_helper.to_array(attr.t)).size == 0
                      for attr in node.attribute)}
    for node in proto.graph.node:
        if node.op_type == "Resize":
            for index in (1, 2):  # roi, scales
                if index < len(node.input) and node.input[index] in empty:
                    node.input[index] = ""
    return proto


def random_images(input_size: tuple[int, int], batch: int = CHECK_BATCH, seed: int = 0) -> np.ndarray:
    """Uniform RGB float32 images in [0, 1], (batch, H, W, 3)."""
    return np.random.default_rng(seed).random((batch, *input_size, 3), dtype=np.float32)


def compare_outputs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> OutputDifferences:
    """The differences of two runs' outputs (`alpha`, `trimap`) on the same images; NaN counts as
    infinitely far."""
    alpha, trimap = (np.nan_to_num(np.abs(actual[name] - expected[name]), nan=np.inf) for name in OUTPUT_NAMES)
    return OutputDifferences(alpha=float(alpha.max()), trimap=float(trimap.max()),
                             alpha_flip_fraction=float(np.mean(alpha >= FLOAT32_TOLERANCE)))


def _check_arguments(weights: Path | None, format: str, output: Path, quantize: str | None,
                     input_size: tuple[int, int] | None, num_threads: int | None, overwrite: bool) -> None:
    """Everything that can be refused before the model is loaded (which takes seconds)."""
    from models.presets import PRESETS

    if format not in FORMATS:
        raise ValueError(f"unsupported export format {format!r}; choose one of {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZATIONS[format]:
        allowed = ", ".join(QUANTIZATIONS[format]) or "none"
        raise ValueError(f"{format} exports cannot be quantized as {quantize!r} (quantizations: {allowed})")
    if format in SUFFIXES and output.suffix != SUFFIXES[format]:
        raise ValueError(f"{output}: a {format} export needs the suffix {SUFFIXES[format]}")
    if weights is not None and output.exists() and weights.exists() and output.resolve() == weights.resolve():
        raise ValueError(f"{output}: is the input weights file; choose another output")
    if output.exists() and not overwrite:
        raise ValueError(f"{output}: exists; give --overwrite (overwrite=True) to replace it")
    # Every preset's size multiple is a multiple of the smallest; the model's own is checked once loaded.
    smallest_multiple = min(settings["size_multiple"] for settings in PRESETS.values())
    if input_size is not None and (len(input_size) != 2 or any(
            int(side) != side or side < smallest_multiple or side % smallest_multiple for side in input_size)):
        raise ValueError(f"input size {' x '.join(map(str, input_size))} must be two positive multiples of "
                         f"{smallest_multiple} (of 32 for the lite preset)")
    check_num_threads(num_threads)
    check_output_dir(output.parent)


def export_model(weights: "str | os.PathLike | keras.Model", format: str, output: str | os.PathLike,
                 quantize: str | None = None, input_size: tuple[int, int] | None = None,
                 num_threads: int | None = None, preset: str | None = None,
                 dynamic_size: bool = False, overwrite: bool = False) -> ExportReport:
    """Export the SHM model in `weights` (a `.keras` file or a loaded model; with `preset`, also a
    `combined_model.py` checkpoint `*.weights.h5`) as `format` (one of FORMATS) to `output`.

    `quantize`: None (float32), "float16" or "dynamic" (int8 weights), for tflite and onnx.
    `input_size`: (H, W) of savedmodel / tflite / onnx graphs (default: `export_input_size`);
    `.keras` exports keep the model's own size. `dynamic_size`: savedmodel / tflite / onnx graphs
    that take any (H, W) (multiples of the preset's size multiple), checked at the export size and
    its transpose; for a model built without a fixed input size. `num_threads`: threads of the
    runner the check loads. An existing `output` is replaced only with `overwrite`. Raises
    `ModelFileError` for a bad weights file, `ValueError` for bad arguments (before loading the
    model), `OSError` for an output folder that cannot be written, and `ExportCheckError` (nothing
    written) when a float32 export does not match the Keras model.
    """
    output = Path(output)
    weights_path = Path(weights) if isinstance(weights, (str, os.PathLike)) else None
    _check_arguments(weights_path, format, output, quantize, input_size, num_threads, overwrite)
    if format == "keras" and (input_size is not None or dynamic_size):
        raise ValueError("keras exports keep the model's own input size; the input size is for "
                         "savedmodel, tflite and onnx")
    if weights_path is None:
        check_is_shm(weights, weights.name)
        model = weights
    else:
        model = load_shm_model(weights_path, preset=preset)
    size = export_input_size(model, input_size)
    if dynamic_size and None not in model.input_shape[1:3]:
        raise ValueError(f"model {model.name!r} takes only {size[0]}x{size[1]} images: a dynamic-size export "
                         "needs a model built without an input size (SemanticHumanMatting.from_preset(preset))")
    graph_size = None if dynamic_size else size
    check_sizes = [size]
    if dynamic_size:  # a second shape shows the graph is not tied to the first
        check_sizes.append(size[::-1] if size[0] != size[1] else (size[0], size[1] + size_multiple(model)))
    batches = [random_images(check_size, seed=index) for index, check_size in enumerate(check_sizes)]
    # The reference runs as the keras runner does (a frozen graph), so that a keras export is compared
    # with exactly its own execution path, and graph exports with a graph.
    reference = KerasRunner(model)
    expected = [reference(images) for images in batches]

    def write_and_check(temporary: Path) -> OutputDifferences:
        if format == "keras":
            model.save(temporary)
        elif format == "savedmodel":
            write_savedmodel(inference_function(model, graph_size), temporary)
        elif format == "tflite":
            write_tflite(inference_function(model, graph_size), temporary, quantize)
        else:
            write_onnx(inference_function(model, graph_size), temporary, quantize)
        runner = load_backend(temporary, format, num_threads=num_threads, trust_savedmodel=True)  # written here
        differences = OutputDifferences.worst([compare_outputs(reference_outputs, runner(images))
                                               for reference_outputs, images in zip(expected, batches)])
        if quantize is None and not differences.is_float32_exact():
            raise ExportCheckError(f"{output}: the {format} export differs from the Keras model: "
                                   f"{differences.describe()}; not written")
        return differences

    if format == "savedmodel":
        with atomic_directory(output) as temporary:
            differences = write_and_check(temporary)
        size_bytes = sum(file.stat().st_size for file in output.rglob("*") if file.is_file())
    else:
        with atomic_path(output) as temporary:
            differences = write_and_check(temporary)
        size_bytes = output.stat().st_size
    return ExportReport(path=output, format=format, quantize=quantize,
                        checked_sizes=tuple(check_sizes), size_bytes=size_bytes, dynamic_size=dynamic_size,
                        differences=differences)


def benchmark(runner: Runner, input_size: tuple[int, int], repeats: int = 5, warmup: int = 2) -> float:
    """Median seconds of `repeats` batch-1 calls of `runner` after `warmup` untimed ones."""
    from models.profiling import time_calls

    image = random_images(input_size, batch=1)
    return time_calls(lambda: runner(image), repeats=repeats, warmup=warmup).median_ms / 1000

