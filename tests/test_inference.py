"""Inference: the Matter API on every backend, model-file errors, folders of good and bad files
(`shm.jobs`), video, webcam and the `inference.py` CLI.

The tiny randomly initialised `lite` SHM (dynamic size, run at a 64 px working size) and its
64x64 TFLite and ONNX exports come from `tiny_shm_exports` (built once, shared with
test_export.py); its mattes are meaningless but have the real shapes and code paths.
"""

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

import inference as cli
import tiny_shm_exports
from models import presets
from models.shm import SemanticHumanMatting
from shm import camera, inference, jobs as shm_jobs
from shm.backends import ModelFileError
from shm.inference import Matter
from shm.jobs import Job, OutputOptions, collect_jobs, matte_jobs, output_paths
from shm.io import read_alpha
from shm.video import read_rgba_frames
from video_helpers import decode_rgb, streams, write_clip

WORKING_SIZE = 64
assert WORKING_SIZE == tiny_shm_exports.EXPORT_SIZE  # square photos then meet the same network input
# Max |alpha| (and foreground) difference between an export's matte and the Keras one (8e-6
# measured with tflite and onnx): the networks agree to ~1e-7, and the guided filter (eps 1e-5)
# may amplify that up to ~1/(2 sqrt(eps)) = 160 times.
EXPORT_ALPHA_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def weights_path() -> Path:
    return tiny_shm_exports.weights_path()


@pytest.fixture(scope="module")
def matter(weights_path) -> Matter:
    return Matter.from_weights(weights_path, working_size=WORKING_SIZE)


@pytest.fixture(scope="module")
def export_paths() -> dict[str, Path]:
    return {format: tiny_shm_exports.float32_export(format).path for format in ("tflite", "onnx")}


def random_photo(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- the Python API -----------------------------------------------------------------------------

def test_predict_returns_float_alpha_at_the_input_size(matter):
    photo = random_photo(37, 53)
    alpha = matter.predict(photo)
    assert alpha.shape == (37, 53) and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    # Grey, RGBA and float [0, 1] versions of the same photo are the same input.
    grey = photo[..., 0]
    np.testing.assert_allclose(matter.predict(grey), matter.predict(np.dstack([grey] * 3)), atol=1e-6)
    rgba = np.dstack([photo, np.zeros((37, 53), np.uint8)])
    np.testing.assert_allclose(matter.predict(rgba), alpha, atol=1e-6)
    np.testing.assert_allclose(matter.predict(photo / 255.0), alpha, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        matter.predict(np.zeros((4, 4, 5), np.uint8))


def test_float_photos_in_0_255_are_refused_and_paths_are_read(matter, tmp_path):
    photo = random_photo(30, 20)
    with pytest.raises(ValueError, match=r"float pixels must be in \[0, 1\], got values in \[0, 255\]: divide by 255"):
        matter.matte(photo.astype(np.float32))  # would be clipped to an almost white photo
    with pytest.raises(ValueError, match="integers in 0..255"):
        matter.predict(photo.astype(np.uint16) * 256)
    np.testing.assert_array_equal(matter.predict(photo.astype(np.int64)), matter.predict(photo))
    Image.fromarray(photo).save(tmp_path / "photo.png")
    np.testing.assert_array_equal(matter.predict(tmp_path / "photo.png"), matter.predict(photo))
    np.testing.assert_array_equal(matter.matte(str(tmp_path / "photo.png")).alpha, matter.predict(photo))
    with pytest.raises(ValueError, match="missing.png: no such file"):
        matter.predict(tmp_path / "missing.png")


def test_a_training_checkpoint_runs_with_its_preset(tmp_path):
    keras.utils.set_random_seed(1)
    model = SemanticHumanMatting.from_preset("lite")  # the preset's own network, as training builds it
    checkpoint = tmp_path / "best.weights.h5"
    model.save_weights(checkpoint)  # what combined_model.py writes
    from_checkpoint = Matter.from_preset("lite", weights=checkpoint, working_size=WORKING_SIZE)
    photo = random_photo(40, 50, seed=4)
    np.testing.assert_allclose(from_checkpoint.predict(photo), Matter(model, working_size=WORKING_SIZE).predict(photo),
                               atol=1e-5)
    with pytest.raises(ModelFileError, match=r"a training checkpoint \(weights only\): give the preset .* "
                                             r"or export it once: python export.py --weights"):
        Matter.from_weights(checkpoint)  # no preset to build the model from
    model.tnet.save_weights(tmp_path / "tnet.weights.h5")  # stage 1's file
    with pytest.raises(ModelFileError, match="tnet.weights.h5: not weights of the lite SHM model; give --preset"):
        Matter.from_preset("lite", weights=tmp_path / "tnet.weights.h5")


def test_matte_upsamples_the_network_alpha_and_trimap(matter):
    photo = random_photo(96, 160, seed=1)
    result = matter.matte(photo, foreground=True, trimap=True)
    assert result.foreground.shape == (96, 160, 3)
    assert result.trimap.shape == (96, 160) and set(np.unique(result.trimap)) <= {0, 1, 2}
    small = cv2.resize(photo, (64, 32), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    outputs = matter.runner(small[None])
    network_alpha = cv2.resize(outputs["alpha"][0, ..., 0], (160, 96))
    assert np.abs(result.alpha - network_alpha).mean() < 0.05
    network_trimap = cv2.resize(outputs["trimap"][0], (160, 96)).argmax(-1)
    assert (result.trimap == network_trimap).mean() > 0.99
    assert all(seconds >= 0 for seconds in (result.times.network, result.times.upsampling,
                                            result.times.foreground))


def test_network_size_keeps_aspect_ratio_in_multiples_of_32(matter):
    assert matter.network_size(600, 800) == (64, 64)  # 48 rounds up to 64
    big = Matter(matter.runner, working_size=320)
    assert big.network_size(600, 800) == (256, 320)
    assert big.network_size(3000, 4000) == (256, 320)
    assert big.network_size(4000, 3000) == (320, 256)
    assert big.network_size(10, 4000) == (32, 320)
    # Never above the photo's own size (but at least 32 px): no memory spent on invented pixels.
    assert big.network_size(1, 1) == (32, 32)
    assert big.network_size(100, 200) == (96, 192)
    assert Matter(matter.runner, working_size=4000).network_size(480, 640) == (480, 640)


class EchoRunner(inference.Runner):
    """A fake model: alpha is the input's red channel (or NaN with `nan`); keeps the last input."""

    backend = "echo"

    def __init__(self, input_size=None, nan=False):
        self.input_size, self.nan, self.seen = input_size, nan, None

    def _run(self, images):
        self.seen = images
        alpha = np.full_like(images[..., :1], np.nan) if self.nan else images[..., :1]
        return {"alpha": alpha, "trimap": images}


def test_fixed_size_models_see_the_photo_with_its_aspect_ratio_padded():
    runner = EchoRunner(input_size=(64, 64))
    photo = random_photo(30, 60, seed=2)
    result = Matter(runner).matte(photo, trimap=True)
    seen = runner.seen[0]
    expected = inference.resize(photo, 32, 64).astype(np.float32) / 255
    np.testing.assert_allclose(seen[16:48], expected, atol=1e-6)  # centred, not stretched to 64x64
    np.testing.assert_array_equal(seen[:16], np.broadcast_to(seen[16], (16, 64, 3)))  # edge padding
    np.testing.assert_array_equal(seen[48:], np.broadcast_to(seen[47], (16, 64, 3)))
    # Alpha comes from the photo's part only: the echoed red channel, back at full size.
    assert result.alpha.shape == (30, 60) and np.abs(result.alpha - photo[..., 0] / 255).max() < 0.05


def test_a_model_giving_nan_fails_each_photo_naming_it(tmp_path):
    Image.fromarray(random_photo(20, 20)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    jobs, _ = collect_jobs(tmp_path, out)
    summary = matte_jobs(Matter(EchoRunner(nan=True), working_size=64), jobs, OutputOptions(out))
    assert summary.processed == 0 and len(summary.errors) == 1
    assert summary.errors[0].startswith(f"{tmp_path / 'a.png'}: the model's alpha is not a number")
    assert not list(out.glob("a_*"))


@pytest.mark.parametrize("format", ["tflite", "onnx"])
def test_exports_give_the_keras_mattes(format, matter, export_paths):
    exported = Matter.from_weights(export_paths[format], num_threads=1)
    assert exported.runner.backend == format and exported.fixed_size == (WORKING_SIZE, WORKING_SIZE)
    # A square photo: the Keras model's working size gives the export's fixed 64x64 input.
    photo = random_photo(90, 90, seed=5)
    expected, actual = matter.matte(photo, trimap=True), exported.matte(photo, trimap=True)
    np.testing.assert_allclose(actual.alpha, expected.alpha, rtol=0, atol=EXPORT_ALPHA_TOLERANCE)
    np.testing.assert_allclose(actual.foreground, expected.foreground, rtol=0, atol=EXPORT_ALPHA_TOLERANCE)
    assert (actual.trimap == expected.trimap).mean() > 0.999
    # A fixed-size model runs at its size whatever the photo's; alpha comes back at the photo's.
    assert exported.network_size(600, 800) == (WORKING_SIZE, WORKING_SIZE)
    alpha = exported.predict(random_photo(30, 70))
    assert alpha.shape == (30, 70) and 0 <= alpha.min() <= alpha.max() <= 1


# --- weights ------------------------------------------------------------------------------------

def test_missing_weights_say_how_to_train(tmp_path):
    with pytest.raises(ModelFileError) as caught:
        Matter.from_weights(tmp_path / "shm_lite.keras")
    message = str(caught.value)
    assert "shm_lite.keras" in message and "python pretrain_tnet.py train_tnet" in message
    assert "python combined_model.py" in message and "\n" not in message


def test_preset_default_weights_resolve_in_the_project(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "SOURCE_ROOT", tmp_path)
    with pytest.raises(ModelFileError, match=str(tmp_path / "weights" / "shm_lite.onnx")):
        Matter.from_preset("lite")  # the default backend's file
    with pytest.raises(ModelFileError, match=str(tmp_path / "weights" / "shm_lite.keras")):
        Matter.from_preset("lite", backend="keras")
    with pytest.raises(ValueError, match="ships no tflite model"):
        Matter.from_preset("lite", backend="tflite")
    with pytest.raises(ModelFileError, match="ships no weights"):
        Matter.from_preset("pspnet50")
    with pytest.raises(ValueError, match="unknown preset"):
        Matter.from_preset("nope")


def test_shipped_models_agree_and_the_default_is_the_onnx_one():
    default, keras_matter = Matter.from_preset("lite"), Matter.from_preset("lite", backend="keras")
    assert default.runner.backend == "onnx" and default.runner.input_size is None
    assert keras_matter.runner.backend == "keras"
    photo = random_photo(120, 90, seed=5)  # runs at 320x256: a size of its own
    np.testing.assert_allclose(default.predict(photo), keras_matter.predict(photo), atol=1e-4)


def test_main_job_on_the_shipped_model_never_imports_tensorflow(tmp_path):
    code = ("import runpy, sys; sys.path.insert(0, '.'); sys.argv = ['inference.py', '--demo', '--output', sys.argv[1]]\n"
            "try:\n    runpy.run_path('inference.py', run_name='__main__')\nexcept SystemExit as stop:\n    assert not stop.code\n"
            "assert not {'tensorflow', 'keras', 'apache_beam'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=Path(__file__).parents[1])
    assert (tmp_path / "astronaut_alpha.png").is_file()


def wrong_weights(tmp_path):
    """Files that are not SHM models, with a part of the message each must produce."""
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    other = tmp_path / "classifier.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    (tmp_path / "folder.keras").mkdir()
    fake_tflite = tmp_path / "fake.tflite"
    fake_tflite.write_bytes(b"TFL3 but not really")
    json_named_keras = tmp_path / "config.keras"
    json_named_keras.write_text('{"class_name": "Functional"}')  # Keras alone says "File not found"
    checkpoint = tmp_path / "best.weights.h5"
    checkpoint.write_bytes(b"weights")
    return [(corrupt, "cannot load"), (other, "not Semantic Human Matting"), (text, "unknown model format"),
            (tmp_path / "folder.keras", "not a SavedModel"), (fake_tflite, "cannot load as a TFLite model"),
            (json_named_keras, "a .keras file is a zip archive and this one is not"),
            (checkpoint, "it was trained with")]  # the CLI always has a preset: "not weights of the lite ..."


def test_weights_of_another_kind_give_one_line_naming_the_file(tmp_path):
    for path, reason in wrong_weights(tmp_path):
        with pytest.raises(ModelFileError) as caught:
            Matter.from_weights(path)
        message = str(caught.value)
        assert str(path) in message and reason in message and "\n" not in message


def write_savedmodel_that_writes(folder: Path, marker: Path) -> Path:
    """A SavedModel with the SHM signature whose graph writes `marker` when it runs: an attack."""
    import tensorflow as tf

    class Attack(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32, name="image")])
        def serving_default(self, image):
            tf.io.write_file(str(marker), "owned")
            return {"alpha": image[..., :1], "trimap": image}

    module = Attack()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serving_default})
    return folder


def test_savedmodels_are_refused_unless_trusted(tmp_path, weights_path, capsys):
    marker = tmp_path / "written_by_the_model"
    attack = write_savedmodel_that_writes(tmp_path / "attack_savedmodel", marker)
    Image.fromarray(random_photo(20, 20)).save(tmp_path / "a.png")
    args = ["--input", tmp_path / "a.png", "--output", tmp_path / "out", "--weights", attack]
    status, text = run_cli(args, capsys)
    assert status == 2 and text.startswith(f"error: {attack}: a SavedModel runs whatever operations")
    assert "--trust-savedmodel" in text and len(text.strip().splitlines()) == 1
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="--trust-savedmodel"):
        Matter.from_weights(tiny_shm_exports.float32_export("savedmodel").path)
    # Trusted, it runs (and this one does what it was written to do).
    status, text = run_cli(args + ["--trust-savedmodel", "--working-size", 64], capsys)
    assert status == 0, text
    assert marker.read_text() == "owned"


def test_saved_shm_round_trips_into_the_same_mattes(matter, weights_path):
    again = Matter.from_weights(weights_path, working_size=WORKING_SIZE)
    photo = random_photo(40, 40, seed=3)
    np.testing.assert_allclose(again.predict(photo), matter.predict(photo), atol=1e-5)


def test_import_shm_is_light_and_exports_matter_lazily():
    code = "import shm, sys; assert not {'tensorflow', 'keras', 'apache_beam'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
    import shm
    assert shm.Matter is Matter
    with pytest.raises(AttributeError):
        shm.NoSuchName


def test_cli_mattes_every_photo_whose_names_collide_and_says_so(tmp_path, export_paths, capsys):
    names = ["a.jpg", "a.JPG", "b.jpg", "b.png", "b_jpg.png"]
    (tmp_path / "in").mkdir()
    for seed, name in enumerate(names):
        Image.fromarray(random_photo(20, 30 + seed, seed=seed)).save(tmp_path / "in" / name,
                                                                      format="PNG" if name.endswith("png") else "JPEG")
    out = tmp_path / "out"
    args = ["--input", tmp_path / "in", "--output", out, "--weights", export_paths["onnx"], "--threads", 1]
    status, text = run_cli(args, capsys)
    assert status == 0 and "5 processed, 0 skipped" in text, text
    widths = sorted(Image.open(path).size[0] for path in out.glob("*_alpha.png"))
    assert widths == [30, 31, 32, 33, 34]  # five photos, five alphas: none replaced another
    assert "note: a.JPG: outputs named a_JPG_*" in text and "note: a.jpg: outputs named a_jpg_2_*" in text
    assert "note: b.jpg: outputs named b_jpg_2_*" in text
    status, text = run_cli(args, capsys)
    assert "0 processed, 5 skipped" in text


def test_matter_clamps_the_upsampled_alpha(weights_path):
    from shm.upsampling import DEFAULT_CLAMP, clamp_alpha

    photo = random_photo(50, 70, seed=3)
    raw = Matter.from_weights(weights_path, working_size=WORKING_SIZE, clamp=0).predict(photo)
    clamped = Matter.from_weights(weights_path, working_size=WORKING_SIZE).predict(photo)
    assert DEFAULT_CLAMP > 0 and 0 < raw.min() and raw.max() < 1  # a random model's grey alpha
    np.testing.assert_allclose(clamped, clamp_alpha(raw.copy(), DEFAULT_CLAMP), atol=1e-6)
    with pytest.raises(ValueError, match="clamp margin"):
        Matter.from_weights(weights_path, clamp=0.5)


def test_cli_never_mixes_outputs_of_two_settings_in_one_folder(tmp_path, export_paths, capsys):
    Image.fromarray(random_photo(40, 40)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    onnx_run = ["--input", tmp_path / "a.png", "--output", out, "--weights", export_paths["onnx"], "--threads", 1]
    assert run_cli(onnx_run, capsys)[0] == 0
    alpha = (out / "a_alpha.png").read_bytes()
    # Another model into the same folder would keep this alpha beside its own composite.
    status, text = run_cli(["--input", tmp_path / "a.png", "--output", out, "--weights", export_paths["tflite"],
                            "--threads", 1, "--background", "lime"], capsys)
    assert status == 2 and f"error: {out}: holds outputs made with other settings (model tiny_lite.onnx" in text
    assert not (out / "a_composite.png").exists() and (out / "a_alpha.png").read_bytes() == alpha
    status, text = run_cli(onnx_run + ["--clamp", 0], capsys)  # another clamp: other alphas
    assert status == 2 and "clamp" in text and (out / "a_alpha.png").read_bytes() == alpha
    # The same model adds a composite; then another background is refused where a composite exists.
    assert run_cli(onnx_run + ["--background", "lime"], capsys)[0] == 0
    on_lime = np.asarray(Image.open(out / "a_composite.png"), np.int32)
    status, text = run_cli(onnx_run + ["--background", "red"], capsys)
    assert status == 2 and "background" in text and "model" not in text.split("settings")[1]
    status, text = run_cli(onnx_run + ["--background", "red", "--overwrite"], capsys)
    assert status == 0, text
    on_red = np.asarray(Image.open(out / "a_composite.png"), np.int32)
    assert (on_red[..., 0] - on_lime[..., 0]).mean() > 0 and (on_red[..., 1] - on_lime[..., 1]).mean() < 0


# --- folders with good and bad files (through the CLI) --------------------------------------------

def make_mixed_folder(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Photos of every awkward kind; the value is the expected (H, W), None for a failure."""
    folder.mkdir()
    rng = np.random.default_rng(4)
    Image.fromarray(random_photo(60, 80)).save(folder / "photo.png")
    Image.fromarray((rng.random((30, 20)) * 65535).astype(np.uint16)).save(folder / "grey16.png")
    Image.fromarray(random_photo(25, 35)).convert("P").save(folder / "palette.png")
    Image.fromarray(np.dstack([random_photo(20, 30), np.full((20, 30), 128, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(random_photo(24, 32)).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(random_photo(1, 1)).save(folder / "one_pixel.png")
    Image.new("RGB", (4000, 3000), (200, 120, 40)).save(folder / "twelve_mp.png")
    rotated = Image.fromarray(random_photo(20, 40))  # stored 40 wide, shown 20 wide (EXIF 6)
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(folder / "rotated.jpg", exif=exif)
    (folder / "empty.png").write_bytes(b"")
    jpeg = (folder / "rotated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "text.png").write_text("not an image at all")
    (folder / "readme.txt").write_text("ignored")
    return {"photo": (60, 80), "grey16": (30, 20), "palette": (25, 35), "rgba": (20, 30),
            "cmyk": (24, 32), "one_pixel": (1, 1), "twelve_mp": (3000, 4000), "rotated": (40, 20),
            "empty": None, "truncated": None, "text": None}


def run_cli(args, capsys):
    status = cli.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_cli_mattes_a_folder_and_reports_each_bad_file(tmp_path, weights_path, capsys):
    expected = make_mixed_folder(tmp_path / "in")
    out = tmp_path / "out"
    args = ["--input", tmp_path / "in", "--output", out, "--weights", weights_path,
            "--working-size", WORKING_SIZE, "--background", "lime", "--save-trimap"]
    status, text = run_cli(args, capsys)
    assert status == 1
    assert "8 processed, 0 skipped (outputs exist), 3 failed, 1 non-image files ignored" in text
    for name, size in expected.items():
        if size is None:
            lines = [line for line in text.splitlines() if f"{name}." in line]
            assert len(lines) == 1 and lines[0].startswith("error:"), (name, text)
            assert not list(out.glob(f"{name}_*"))
            continue
        alpha_image = Image.open(out / f"{name}_alpha.png")
        assert alpha_image.mode == "L" and alpha_image.size == size[::-1]
        rgba = Image.open(out / f"{name}_rgba.png")
        assert rgba.mode == "RGBA" and rgba.size == size[::-1]
        np.testing.assert_array_equal(np.asarray(rgba)[..., 3], np.asarray(alpha_image))
        assert Image.open(out / f"{name}_composite.png").size == size[::-1]
        assert set(np.unique(np.asarray(Image.open(out / f"{name}_trimap.png")))) <= {0, 128, 255}
    assert [path.name for path in out.glob(".*")] == [shm_jobs.SETTINGS_RECORD]  # no temporary files left

    before = (out / "photo_alpha.png").stat().st_mtime_ns
    status, text = run_cli(args, capsys)
    assert "0 processed, 8 skipped (outputs exist), 3 failed" in text
    assert (out / "photo_alpha.png").stat().st_mtime_ns == before


def test_a_failing_output_does_not_stop_the_batch(tmp_path, matter):
    for name in ["a", "b"]:
        Image.fromarray(random_photo(20, 20)).save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    (out / "a_alpha.png").mkdir(parents=True)  # a folder where a's alpha should go
    jobs, _ = collect_jobs(tmp_path, out)
    summary = matte_jobs(matter, jobs, OutputOptions(out, overwrite=True))
    assert summary.processed == 1 and len(summary.errors) == 1
    assert "a_alpha.png: cannot write" in summary.errors[0]
    assert (out / "b_alpha.png").is_file()


def test_outputs_beside_the_inputs_leave_the_inputs_alone(tmp_path, matter):
    Image.fromarray(random_photo(20, 30)).save(tmp_path / "a.png")
    original = (tmp_path / "a.png").read_bytes()
    for overwrite in (False, True):
        jobs, _ = collect_jobs(tmp_path, tmp_path)
        assert [job.label for job in jobs] == ["a.png"]  # earlier outputs are not inputs
        summary = matte_jobs(matter, jobs, OutputOptions(tmp_path, overwrite=overwrite))
        assert summary.processed + summary.skipped == 1 and not summary.errors
    assert (tmp_path / "a.png").read_bytes() == original
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png", "a_alpha.png", "a_rgba.png"]


def test_cli_refuses_an_unwritable_output_folder(tmp_path, weights_path, capsys):
    Image.fromarray(random_photo(10, 10)).save(tmp_path / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    status, text = run_cli(["--input", tmp_path / "a.png", "--output", blocker / "out",
                            "--weights", weights_path], capsys)
    assert status == 2 and f"error: {blocker / 'out'}: output folder is not writable" in text


def test_cli_wrong_or_missing_weights_exit_non_zero(tmp_path, capsys, monkeypatch):
    Image.fromarray(random_photo(10, 10)).save(tmp_path / "a.png")
    (tmp_path / "weights").mkdir()
    for path, reason in wrong_weights(tmp_path / "weights"):
        status, text = run_cli(["--input", tmp_path / "a.png", "--output", tmp_path / "out",
                                "--weights", path], capsys)
        assert status == 2 and text.startswith(f"error: {path}") and reason in text
    monkeypatch.setattr(presets, "SOURCE_ROOT", tmp_path)
    status, text = run_cli(["--input", tmp_path / "a.png", "--output", tmp_path / "out"], capsys)
    assert status == 2 and "python pretrain_tnet.py train_tnet" in text
    assert not (tmp_path / "out").exists()


def test_cli_backends_give_the_same_alpha(tmp_path, weights_path, export_paths, capsys):
    Image.fromarray(random_photo(90, 90, seed=6)).save(tmp_path / "a.png")
    runs = {"keras": ["--weights", weights_path, "--working-size", WORKING_SIZE],
            "tflite": ["--weights", export_paths["tflite"], "--backend", "tflite", "--threads", 1],
            "onnx": ["--weights", export_paths["onnx"]]}  # backend inferred from the suffix
    alphas = {}
    for name, args in runs.items():
        status, text = run_cli(["--input", tmp_path / "a.png", "--output", tmp_path / name, *args], capsys)
        assert status == 0, text
        alphas[name] = np.asarray(Image.open(tmp_path / name / "a_alpha.png"), np.int16)
    assert np.abs(alphas["tflite"] - alphas["keras"]).max() <= 1  # 8-bit rounding of ~1e-5 apart
    assert np.abs(alphas["onnx"] - alphas["keras"]).max() <= 1


def test_cli_backend_of_another_format_names_the_file(tmp_path, weights_path, export_paths, capsys):
    Image.fromarray(random_photo(10, 10)).save(tmp_path / "a.png")
    for backend, path, kind in [("tflite", export_paths["onnx"], "onnx"), ("onnx", weights_path, "keras"),
                                ("keras", export_paths["tflite"], "tflite")]:
        status, text = run_cli(["--input", tmp_path / "a.png", "--output", tmp_path / "out",
                                "--backend", backend, "--weights", path], capsys)
        assert status == 2 and len(text.strip().splitlines()) == 1
        assert text.startswith(f"error: {path}: a model for the {kind} backend, not the {backend} one")
    status, text = run_cli(["--input", tmp_path / "a.png", "--output", tmp_path / "out", "--backend", "tflite"],
                           capsys)
    assert status == 2 and "ships no tflite model" in text and "export.py" in text
    assert not (tmp_path / "out").exists()


def test_cli_demo_mattes_the_astronaut(tmp_path, weights_path, capsys):
    status, text = run_cli(["--demo", "--output", tmp_path, "--weights", weights_path,
                            "--working-size", WORKING_SIZE], capsys)
    assert status == 0, text
    assert read_alpha(tmp_path / "astronaut_alpha.png").shape == (512, 512)
    assert Image.open(tmp_path / "astronaut_rgba.png").mode == "RGBA"


def test_camera_without_a_display_says_so(monkeypatch, weights_path, capsys):
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:     NONE\n")
    assert "headless" in camera.display_problem()
    status, text = run_cli(["--camera", "0", "--weights", weights_path], capsys)
    assert status == 2 and "headless" in text and len(text.strip().splitlines()) == 1
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:     GTK3\n")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert "no display" in camera.display_problem()


# --- video --------------------------------------------------------------------------------------

def write_video(path: Path, frames: int, fps: float, height=48, width=64):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for index in range(frames):
        writer.write(random_photo(height, width, seed=index))
    writer.release()


def read_video(path: Path):
    capture = cv2.VideoCapture(str(path))
    fps, frames = capture.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return fps, frames


def test_a_truncated_video_keeps_its_readable_frames_and_fails(tmp_path, matter):
    writer = cv2.VideoWriter(str(tmp_path / "whole.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 12, (64, 48))
    for index in range(24):
        writer.write(random_photo(48, 64, seed=index))
    writer.release()
    data = (tmp_path / "whole.avi").read_bytes()
    (tmp_path / "whole.avi").unlink()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])  # the header still says 24 frames
    _, readable = read_video(tmp_path / "cut.avi")
    assert 0 < len(readable) < 24
    out = tmp_path / "out"
    jobs, _ = collect_jobs(tmp_path, out)
    summary = matte_jobs(matter, jobs, OutputOptions(out))
    assert summary.processed == 0 and len(summary.errors) == 1
    assert f"cut.avi: only {len(readable)} of the 24 frames" in summary.errors[0]
    assert len(read_video(out / "cut_alpha.mp4")[1]) == len(readable)


def test_video_gives_alpha_and_composite_videos_at_the_same_frame_rate(tmp_path, matter):
    write_video(tmp_path / "clip.mp4", frames=5, fps=12)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x01 not a video")
    out = tmp_path / "out"
    jobs, _ = collect_jobs(tmp_path, out)
    summary = matte_jobs(matter, jobs, OutputOptions(out, background=np.array([255, 0, 0], np.uint8)))
    assert summary.processed == 1 and summary.frames == 5
    assert len(summary.errors) == 1 and "broken.mp4" in summary.errors[0]
    for kind, path in output_paths(Job("clip", out / "clip", tmp_path / "clip.mp4"), OutputOptions(out)).items():
        fps, frames = read_video(path)
        assert fps == pytest.approx(12) and len(frames) == 5 and frames[0].shape == (48, 64, 3)
    _, alpha_frames = read_video(out / "clip_alpha.mp4")
    assert np.abs(alpha_frames[0][..., 0].astype(int) - alpha_frames[0][..., 2]).max() <= 8  # grey
    assert not list(out.glob(".*"))


def test_video_round_trip_with_every_output_alpha_and_audio(tmp_path, matter):
    write_clip(tmp_path / "clip.mp4", frames=5, fps=12)  # H.264 with an AAC tone
    out = tmp_path / "out"
    kinds = ("alpha", "rgba", "composite", "foreground", "frames")
    jobs, _ = collect_jobs(tmp_path / "clip.mp4", out)
    summary = matte_jobs(matter, jobs, OutputOptions(out, kinds=kinds, quiet=True))
    assert summary.processed == 1 and summary.frames == 5 and not summary.errors
    for name, codec in (("clip_alpha.mp4", "h264"), ("clip_composite.mp4", "h264"),
                        ("clip_foreground.mp4", "h264"), ("clip_rgba.webm", "vp9")):
        found = streams(out / name)
        assert found["video"] == (codec, 12.0), name
        assert found["audio"][0] == ("opus" if name.endswith("webm") else "aac"), name  # copied / re-encoded
        assert found["audio"][1] is None or found["audio"][1] == pytest.approx(5 / 12, abs=0.1)
    frames = sorted((out / "clip_frames").iterdir())
    assert [path.name for path in frames] == [f"{index:06d}.png" for index in range(5)]
    png_alphas = [np.asarray(Image.open(path))[..., 3].astype(int) for path in frames]
    webm_alphas = [frame[..., 3].astype(int) for frame in read_rgba_frames(out / "clip_rgba.webm")]
    mp4_alphas = [frame[..., 0].astype(int) for frame in decode_rgb(out / "clip_alpha.mp4")]
    assert len(webm_alphas) == len(mp4_alphas) == 5
    for exact, vp9, h264 in zip(png_alphas, webm_alphas, mp4_alphas):
        assert np.abs(vp9 - exact).mean() < 6 and np.abs(h264 - exact).mean() < 3  # lossy codecs
    assert not list(out.glob(".*"))  # no temporary file or folder left behind
    again = matte_jobs(matter, jobs, OutputOptions(out, kinds=kinds, quiet=True))
    assert again.skipped == 1 and again.processed == 0


def test_a_folder_of_frames_is_matted_as_one_video(tmp_path, matter):
    (tmp_path / "shot").mkdir()
    for index in range(3):
        Image.fromarray(random_photo(32, 48, seed=index)).save(tmp_path / "shot" / f"{index:04d}.png")
    jobs, _ = collect_jobs(tmp_path / "shot", tmp_path / "out", frame_rate=24)
    summary = matte_jobs(matter, jobs, OutputOptions(tmp_path / "out", kinds=("rgba", "trimap"), quiet=True))
    assert summary.frames == 3 and not summary.errors
    assert streams(tmp_path / "out" / "shot_rgba.webm") == {"video": ("vp9", 24.0)}
    assert len(list(read_rgba_frames(tmp_path / "out" / "shot_rgba.webm"))) == 3
    with pytest.raises(ValueError, match="no images or videos found"):
        collect_jobs(tmp_path / "out", tmp_path / "out")  # the .webm there is an earlier output
    photo_jobs, _ = collect_jobs(tmp_path / "shot", tmp_path / "out")
    only_video = matte_jobs(matter, photo_jobs[:1], OutputOptions(tmp_path / "out", kinds=("frames",), quiet=True))
    assert "none of the outputs asked for (frames) applies to a photo" in only_video.errors[0]


def test_an_opencv_out_of_memory_is_one_plain_line(tmp_path, matter, monkeypatch):
    Image.fromarray(random_photo(8, 8)).save(tmp_path / "a.png")
    monkeypatch.setattr(matter, "matte", lambda *args, **kwargs: cv2.resize(random_photo(8, 8), (200000, 200000)))
    jobs, _ = collect_jobs(tmp_path / "a.png", tmp_path / "out")
    summary = matte_jobs(matter, jobs, OutputOptions(tmp_path / "out", quiet=True))
    assert summary.errors == [f"{tmp_path / 'a.png'}: out of memory"]


# --- the command line as a user runs it: streams, quiet, stdin/stdout, Ctrl-C -----------------
# These run inference.py as a process on the shipped ONNX model (no TensorFlow: about a second).

ROOT = Path(__file__).parents[1]


def run_inference(args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "inference.py"), *map(str, args)], input=stdin,
                          capture_output=True, cwd=ROOT, timeout=120)


def test_cli_streams_results_on_stdout_errors_on_stderr_no_bars_in_logs(tmp_path):
    Image.fromarray(random_photo(40, 30)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("not an image")
    run = run_inference(["--input", tmp_path, "--output", tmp_path / "out"])
    out, err = run.stdout.decode(), run.stderr.decode()
    assert run.returncode == 1
    assert out.startswith("1 processed, 0 skipped (outputs exist), 1 failed") and out.count("\n") == 1
    assert err == f"error: {tmp_path / 'bad.png'}: not an image file (format not recognised)\n"
    assert "\r" not in out + err and "\x1b" not in out + err  # no progress bar off a terminal

    quiet = run_inference(["--input", tmp_path, "--output", tmp_path / "out2", "--quiet", "--timings"])
    assert quiet.returncode == 1 and quiet.stdout == b"" and quiet.stderr.decode() == err
    assert (tmp_path / "out2" / "good_alpha.png").is_file()


def test_cli_reads_stdin_and_writes_one_png_to_stdout(tmp_path):
    photo = random_photo(36, 52)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    encoded = (tmp_path / "photo.png").read_bytes()
    run = run_inference(["--input", "-", "--output", "-"], stdin=encoded)
    assert run.returncode == 0 and b"1 processed" in run.stderr
    cutout = Image.open(io.BytesIO(run.stdout))
    assert cutout.format == "PNG" and cutout.mode == "RGBA" and cutout.size == (52, 36)
    alpha = run_inference(["--input", tmp_path / "photo.png", "--output", "-", "--only-alpha", "--quiet"])
    assert alpha.returncode == 0 and alpha.stderr == b""
    matte = Image.open(io.BytesIO(alpha.stdout))
    assert matte.mode == "L" and np.array_equal(np.asarray(matte), np.asarray(cutout)[..., 3])
    empty = run_inference(["--input", "-", "--output", "-"], stdin=b"")
    assert empty.returncode == 2 and empty.stdout == b"" and empty.stderr == b"error: <stdin>: empty file (0 bytes)\n"


def test_cli_single_output_file_and_clear_refusals(tmp_path):
    Image.fromarray(random_photo(20, 24)).save(tmp_path / "photo.jpg")
    run = run_inference(["--input", tmp_path / "photo.jpg", "--output", tmp_path / "cut.png", "--background", "lime"])
    assert run.returncode == 0 and (tmp_path / "cut.png").is_file()  # a file, not a folder named cut.png
    assert Image.open(tmp_path / "cut.png").mode == "RGB"  # with a background: the composite
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cut.png", "photo.jpg"]
    (tmp_path / "empty").mkdir()
    cases = [(["--input", tmp_path / "empty", "--output", tmp_path / "o"], f"{tmp_path / 'empty'}: no images or videos found"),
             (["--input", tmp_path, "--output", tmp_path / "cut.png"], f"{tmp_path / 'cut.png'}: a file, not a folder"),
             (["--input", tmp_path / "photo.jpg", "--output", tmp_path / "x.png", "--outputs", "alpha,rgba"],
              "one output file takes one output, not alpha, rgba"),
             (["--input", tmp_path / "photo.jpg", "--output", tmp_path / "o", "--outputs", "alpha,mask"],
              "unknown output mask")]
    for args, message in cases:
        run = run_inference(args)
        assert run.stdout == b"" and message in run.stderr.decode() and run.stderr.decode().count("\n") == 1, args


def test_ctrl_c_prints_the_summary_not_a_traceback(tmp_path):
    for index in range(400):
        Image.fromarray(random_photo(24, 24, seed=index)).save(tmp_path / f"{index:03d}.png")
    # Ctrl-C's default disposition in the child: a process started from a background job inherits
    # an ignored SIGINT, and Python then raises no KeyboardInterrupt (the whole folder ran, exit 0,
    # in a CI rehearsal started with `nohup ... &`).
    process = subprocess.Popen([sys.executable, str(ROOT / "inference.py"), "--input", str(tmp_path),
                                "--output", str(tmp_path / "out")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (tmp_path / "out" / "000_rgba.png").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert out.decode().startswith("interrupted: ") and "processed" in out.decode()
    assert b"Traceback" not in err and err == b""
    done = int(out.decode().split("interrupted: ")[1].split(" processed")[0])
    alphas = len(list((tmp_path / "out").glob("*_alpha.png")))
    assert 1 <= done < 400 and done <= alphas <= done + 1  # the photo being matted may have its alpha only


def test_cli_checks_threads_and_sweeps_a_killed_runs_temporaries(tmp_path, export_paths, capsys):
    from test_io import dead_pid

    Image.fromarray(random_photo(20, 20)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / f".a_alpha.{dead_pid()}.abcd1234.tmp.png"
    leftover.write_bytes(b"half a png")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--input", str(tmp_path / "a.png"), "--output", str(out), "--threads", "-3"])
    assert stopped.value.code == 2 and "--threads: must be a whole number of at least 1" in capsys.readouterr().err
    status, text = run_cli(["--input", tmp_path / "a.png", "--output", out, "--weights", export_paths["onnx"],
                            "--threads", 1], capsys)
    assert status == 0 and f"note: removed {leftover}" in text and not leftover.exists()


def test_cli_photos_over_max_pixels_fail_in_one_line(tmp_path, export_paths, capsys, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # the CLI sets it for the process
    Image.fromarray(random_photo(20, 20)).save(tmp_path / "a.png")
    args = ["--input", tmp_path / "a.png", "--output", tmp_path / "out", "--weights", export_paths["onnx"],
            "--threads", 1]
    status, text = run_cli(args + ["--max-pixels", "0.0003"], capsys)
    assert status == 1 and f"error: {tmp_path / 'a.png'}: 0.0004 MP, over the limit of 0.0003 MP" in text
    assert run_cli(args + ["--max-pixels", "0"], capsys)[0] == 2
    assert run_cli(args + ["--max-pixels", "0.0004"], capsys)[0] == 0


def test_matte_batch_runs_the_network_once_per_size_and_gives_matte_s_results(matter, monkeypatch):
    photos = [random_photo(40, 60, seed=1), random_photo(50, 40, seed=2), random_photo(80, 120, seed=3)]
    calls = []
    run = matter.runner._run
    monkeypatch.setattr(matter.runner, "_run", lambda images: calls.append(images.shape) or run(images))
    results = matter.matte_batch(photos, trimap=True)
    assert sorted(calls) == [(1, 64, 32, 3), (2, 32, 64, 3)]  # 40x60 and 80x120 share 32x64 at 64 px
    for photo, result in zip(photos, results):
        single = matter.matte(photo, trimap=True)
        np.testing.assert_allclose(result.alpha, single.alpha, atol=1e-4)
        np.testing.assert_allclose(result.foreground, single.foreground, atol=1e-4)
        assert result.alpha.shape == photo.shape[:2] and result.times.network > 0
