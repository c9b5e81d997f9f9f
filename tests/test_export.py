"""Exports (keras, savedmodel, tflite, onnx; float16 / dynamic quantization) and their runners.

The tiny randomly initialised SHM of the `lite` preset (dynamic size) and its float32 exports at
64x64 come from `tiny_shm_exports` (built once, shared with test_inference.py); every export is
reloaded through `shm.backends.load_backend` and compared with the Keras model. The real lite
network is exported once, from a training checkpoint.
"""

import types
from pathlib import Path

import keras
import numpy as np
import pytest

import export as cli
import tiny_shm_exports
from models.shm import SemanticHumanMatting
from shm import export
from shm.backends import KerasRunner, ModelFileError, backend_of, load_backend
from shm.export import (FLOAT32_TOLERANCE, ExportCheckError, compare_outputs, export_input_size, export_model,
                        random_images)

SIZE = tiny_shm_exports.EXPORT_SIZE


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return tiny_shm_exports.tiny_model()


@pytest.fixture(scope="module")
def weights_path() -> Path:
    return tiny_shm_exports.weights_path()


@pytest.fixture(scope="module")
def keras_runner(weights_path):
    return load_backend(weights_path)


QUANTIZED_WEIGHT_TYPES = {"float16": {np.dtype(np.float16)}, "dynamic": {np.dtype(np.int8), np.dtype(np.uint8)}}


def weight_dtypes(path: Path) -> set[np.dtype]:
    """The element types of the constant tensors stored in a .tflite or .onnx file."""
    if path.suffix == ".onnx":
        import onnx
        return {np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type))
                for tensor in onnx.load(str(path)).graph.initializer}
    from ai_edge_litert.interpreter import Interpreter
    return {np.dtype(detail["dtype"]) for detail in Interpreter(model_path=str(path)).get_tensor_details()}


def leftovers(folder: Path) -> list[str]:
    """Temporary files or directories an export left behind (their names start with a dot)."""
    return [path.name for path in folder.iterdir() if path.name.startswith(".")]


@pytest.mark.parametrize("format", ["keras", "savedmodel", "tflite", "onnx"])
def test_float32_export_reloads_and_matches_keras(format, keras_runner):
    report = tiny_shm_exports.float32_export(format)
    assert report.path.exists() and report.size_bytes > 0 and report.differences.is_float32_exact()
    assert leftovers(report.path.parent) == []

    runner = load_backend(report.path, num_threads=1, trust_savedmodel=True)
    assert runner.backend == format
    if format == "keras":  # keeps the dynamic size; checked at the preset's working size
        assert runner.input_size is None and report.input_size == (320, 320)
    else:
        assert runner.input_size == report.input_size == (SIZE, SIZE)
    # Another batch size than the export check used: the batch dimension stays dynamic.
    images = random_images((SIZE, SIZE), batch=3, seed=7)
    outputs = runner(images)
    assert outputs["alpha"].shape == (3, SIZE, SIZE, 1) and outputs["trimap"].shape == (3, SIZE, SIZE, 3)
    assert compare_outputs(keras_runner(images), outputs).is_float32_exact()


@pytest.mark.parametrize("format, quantize", [("tflite", "float16"), ("tflite", "dynamic"),
                                              ("onnx", "float16"), ("onnx", "dynamic")])
def test_quantized_export_runs_and_reports_its_difference(format, quantize, model, keras_runner, tmp_path):
    report = export_model(model, format, tmp_path / f"m.{format}", quantize=quantize, input_size=(SIZE, SIZE))
    # The weights are stored as float16 or 8-bit integers (on a model this small the graph, not
    # the weights, makes most of the file: its size shows nothing).
    assert QUANTIZED_WEIGHT_TYPES[quantize] & weight_dtypes(report.path)
    runner = load_backend(report.path)
    outputs = runner(random_images((SIZE, SIZE), batch=1))
    assert np.all(np.isfinite(outputs["alpha"])) and 0 <= outputs["alpha"].min() <= outputs["alpha"].max() <= 1
    # The reported difference is the one on the check's images, recomputed here.
    images = random_images((SIZE, SIZE))
    measured = compare_outputs(keras_runner(images), runner(images))
    assert np.isclose(report.differences.alpha, measured.alpha, rtol=1e-5, atol=1e-7)
    assert 0 < report.differences.alpha < 0.5


def test_failed_float32_check_writes_nothing(model, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "FLOAT32_TOLERANCE", 0.0)  # even an exact copy now fails
    with pytest.raises(ExportCheckError, match="not written"):
        export_model(model, "keras", tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []


def outputs_like(shape=(2, 320, 320), seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"alpha": rng.random((*shape, 1), dtype=np.float32), "trimap": rng.random((*shape, 3), dtype=np.float32)}


def test_float32_check_allows_argmax_tie_flips_but_not_real_differences():
    expected = outputs_like()
    # Unpooling after a max-pooling tie moves a value at a few pixels (seen: 44 of 204,800, by 3.8e-3).
    flips = {**expected, "alpha": expected["alpha"].copy()}
    flips["alpha"].reshape(-1)[::4096] += 0.3
    differences = compare_outputs(expected, flips)
    assert differences.alpha == pytest.approx(0.3, abs=1e-6) and differences.is_float32_exact()
    assert differences.alpha_flip_fraction == pytest.approx(50 / 204_800)

    offset = {**expected, "alpha": expected["alpha"] + 2 * FLOAT32_TOLERANCE}  # e.g. a wrong normalisation
    border = {**expected, "alpha": expected["alpha"].copy()}
    border["alpha"][:, :, :2] += 0.05                                          # e.g. wrong padding
    trimap = {**expected, "trimap": expected["trimap"].copy()}
    trimap["trimap"][0, 5, 5, 1] += 2 * FLOAT32_TOLERANCE                     # the trimap has no ties
    nan = {**expected, "alpha": np.full_like(expected["alpha"], np.nan)}
    for actual in (offset, border, trimap, nan):
        assert not compare_outputs(expected, actual).is_float32_exact()


def test_export_with_a_real_difference_is_not_written(model, tmp_path, monkeypatch):
    real_inference_function = export.inference_function

    def brightened(model, input_size):  # the graph sees brighter images than the Keras model
        import tensorflow as tf
        function = real_inference_function(model, input_size)
        return tf.function(lambda image: function(image=tf.minimum(image + 0.2, 1.0)),
                           input_signature=function.input_signature)

    monkeypatch.setattr(export, "inference_function", brightened)
    with pytest.raises(ExportCheckError, match="onnx export differs from the Keras model: max .*not written"):
        export_model(model, "onnx", tmp_path / "m.onnx", input_size=(SIZE, SIZE))
    assert list(tmp_path.iterdir()) == []


def test_missing_and_wrong_weights_files(tmp_path):
    with pytest.raises(ModelFileError, match="missing.keras: no such model file"):
        export_model(tmp_path / "missing.keras", "onnx", tmp_path / "m.onnx")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_text("not a zip archive")
    with pytest.raises(ModelFileError, match="corrupt.keras: cannot load as a Keras model"):
        export_model(corrupt, "onnx", tmp_path / "m.onnx")
    other = tmp_path / "classifier.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(other)
    with pytest.raises(ModelFileError, match="classifier.keras: .* not Semantic Human Matting"):
        export_model(other, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_arguments_are_refused_and_nothing_is_written(weights_path, tmp_path):
    with pytest.raises(ValueError, match="unsupported export format 'coreml'"):
        export_model(weights_path, "coreml", tmp_path / "m.mlmodel")
    with pytest.raises(ValueError, match="keras exports cannot be quantized"):
        export_model(weights_path, "keras", tmp_path / "m.keras", quantize="dynamic")
    with pytest.raises(ValueError, match="needs the suffix .tflite"):
        export_model(weights_path, "tflite", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="is the input weights file"):
        export_model(weights_path, "keras", weights_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("format", ["tflite", "onnx"])
def test_dynamic_size_export_runs_at_other_sizes_like_keras(format, model, keras_runner, tmp_path):
    output = tmp_path / f"dynamic{export.SUFFIXES[format]}"
    report = export_model(model, format, output, input_size=(SIZE, SIZE), dynamic_size=True)
    assert report.dynamic_size and report.checked_sizes == ((SIZE, SIZE), (SIZE, SIZE + 32))
    assert "dynamic size, checked at 64x64 and 64x96" in report.describe()
    runner = load_backend(output, num_threads=1)
    assert runner.input_size is None
    for size in [(32, 96), (96, 64), (SIZE, SIZE)]:  # sizes in any order: the runtime re-plans each time
        images = random_images(size, batch=1, seed=size[0])
        assert compare_outputs(keras_runner(images), runner(images)).is_float32_exact()


def test_dynamic_size_needs_a_dynamic_model_and_a_graph_format(tmp_path):
    fixed = tiny_shm_exports.tiny_shm(input_size=SIZE)
    with pytest.raises(ValueError, match="takes only 64x64 images: a dynamic-size export needs"):
        export_model(fixed, "tflite", tmp_path / "fixed.tflite", dynamic_size=True)
    with pytest.raises(ValueError, match="keras exports keep the model's own input size"):
        export_model(fixed, "keras", tmp_path / "fixed.keras", dynamic_size=True)
    assert list(tmp_path.iterdir()) == []


def test_export_input_size_defaults_and_checks():
    dynamic_lite = types.SimpleNamespace(name="any", preset="lite", input_shape=(None, None, None, 3))
    assert export_input_size(dynamic_lite) == (320, 320)
    assert export_input_size(dynamic_lite, (256, 384)) == (256, 384)
    with pytest.raises(ValueError, match="multiples of 32"):
        export_input_size(dynamic_lite, (320, 300))
    fixed = types.SimpleNamespace(name="any", preset="lite", input_shape=(None, 64, 64, 3))
    assert export_input_size(fixed) == (64, 64)
    with pytest.raises(ValueError, match="takes only 64x64 images, not 96x96"):
        export_input_size(fixed, (96, 96))
    unknown = types.SimpleNamespace(name="shm_lite", preset=None, input_shape=(None, None, None, 3))
    with pytest.raises(ValueError, match="give the input size"):
        export_input_size(unknown)


def test_savedmodel_directory_is_replaced_only_if_it_is_one(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "keep.jpg").write_bytes(b"jpeg")
    with pytest.raises(ValueError, match="photos: exists and is not a SavedModel directory"):
        with export.atomic_directory(folder):
            pass
    assert (folder / "keep.jpg").read_bytes() == b"jpeg"

    previous = tmp_path / "model"
    previous.mkdir()
    (previous / "saved_model.pb").write_bytes(b"old")
    with export.atomic_directory(previous) as temporary:
        (temporary / "saved_model.pb").write_bytes(b"new")
    assert (previous / "saved_model.pb").read_bytes() == b"new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "photos"]


def test_runner_checks_its_input(keras_runner, tmp_path):
    tflite_runner = load_backend(tiny_shm_exports.float32_export("tflite").path, num_threads=1)
    with pytest.raises(ValueError, match="takes 64x64 images, got 32x32"):
        tflite_runner(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected images \(B, H, W, 3\)"):
        keras_runner(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ModelFileError, match="unknown model format"):
        backend_of(tmp_path / "model.pt")
    (tmp_path / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="model.onnx: a model for the onnx backend, not the tflite one"):
        load_backend(tmp_path / "model.onnx", "tflite")
    with pytest.raises(ModelFileError, match="model.onnx: cannot load as an ONNX model"):
        load_backend(tmp_path / "model.onnx")


def test_cli_exports_with_benchmark_and_reports_errors_in_one_line(weights_path, tmp_path, capsys):
    assert cli.main(["--weights", str(weights_path), "--format", "onnx", "--output", str(tmp_path / "m.onnx"),
                     "--input-size", str(SIZE), str(SIZE), "--benchmark", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "max |alpha - Keras|" in out and "benchmark: onnx (float32) at 64x64, batch 1: median" in out
    assert cli.main(["--weights", str(tmp_path / "nope.keras"), "--format", "onnx",
                     "--output", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'nope.keras'}: no such model file"]


def test_quiet_cli_prints_only_errors_and_the_benchmark(weights_path, tmp_path, capfd):
    capfd.readouterr()
    assert cli.main(["--weights", str(weights_path), "--format", "keras", "--output", str(tmp_path / "m.keras"),
                     "--quiet"]) == 0
    assert capfd.readouterr() == ("", "") and load_backend(tmp_path / "m.keras").input_size is None
    assert cli.main(["--weights", str(weights_path), "--format", "keras", "--output", str(tmp_path / "b.keras"),
                     "--quiet", "--benchmark"]) == 0
    printed = capfd.readouterr()
    assert printed.out.startswith("benchmark: keras (float32)") and len(printed.out.splitlines()) == 1
    assert printed.err == ""


def test_training_checkpoint_exports_with_its_preset(tmp_path):
    keras.utils.set_random_seed(0)
    model = SemanticHumanMatting.from_preset("lite")  # the real lite network: the preset's own
    checkpoint = tmp_path / "best.weights.h5"
    model.save_weights(checkpoint)
    report = export_model(checkpoint, "keras", tmp_path / "shm.keras", preset="lite")
    # The check runs the model as the keras runner does: the same path on both sides, bit for bit.
    assert report.differences.alpha == report.differences.trimap == 0.0
    reloaded = load_backend(tmp_path / "shm.keras")
    images = random_images((64, 64))
    np.testing.assert_array_equal(reloaded(images)["alpha"], KerasRunner(model)(images)["alpha"])

    model.tnet.save_weights(tmp_path / "tnet.weights.h5")
    with pytest.raises(ModelFileError, match="tnet.weights.h5: not weights of the lite SHM model"):
        export_model(tmp_path / "tnet.weights.h5", "keras", tmp_path / "other.keras", preset="lite")


def test_cli_refuses_bad_arguments_before_loading_the_model(weights_path, tmp_path, capsys, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(export, "load_shm_model", no_loading)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    existing = tmp_path / "old.onnx"
    existing.write_bytes(b"an earlier export")
    base = ["--weights", str(weights_path), "--format", "onnx"]
    cases = [(["--output", str(blocker / "m.onnx")], f"{blocker}: a file, not a folder"),
             (["--output", str(tmp_path / "m.onnx"), "--input-size", "100", "64"], "input size 100 x 64 must be"),
             (["--output", str(tmp_path / "m.onnx"), "--input-size", "-32", "64"], "must be two positive multiples"),
             (["--output", str(existing)], f"{existing}: exists; give --overwrite")]
    for extra, message in cases:
        assert cli.main(base + extra) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert existing.read_bytes() == b"an earlier export"
    with pytest.raises(SystemExit) as stopped:
        cli.main(base + ["--output", str(tmp_path / "m.onnx"), "--threads", "-3"])
    assert stopped.value.code == 2 and "--threads: must be a whole number of at least 1" in capsys.readouterr().err


def test_cli_replaces_an_existing_export_only_with_overwrite(weights_path, tmp_path, capsys):
    output = tmp_path / "m.onnx"
    output.write_bytes(b"an earlier export")
    assert cli.main(["--weights", str(weights_path), "--format", "onnx", "--output", str(output),
                     "--input-size", str(SIZE), str(SIZE), "--threads", "1", "--overwrite"]) == 0
    assert load_backend(output, num_threads=1).input_size == (SIZE, SIZE)
