"""The Beam pipeline (shm.beam, matte_beam.py) on the DirectRunner: inference.py's outputs, failures
in failures.jsonl, reruns that do only what is missing, --overwrite, two worker processes.

Photos are tiny and the shipped ONNX model runs at a 64 px working size on 1 thread; Beam's
multi_processing start-up (~6 s for two workers here) is paid once.
"""

import json
import os
import re
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import inference
import matte_beam
from shm import beam as shm_beam

ARGS = ["--working-size", "64", "--threads", "1"]
# The good photos: odd sizes, one in a subfolder, two sharing a stem (named a_jpg, a_png).
PHOTOS = {"a.jpg": (40, 60), "a.png": (50, 40), "sub/b.png": (90, 70), "c.png": (70, 90), "d.png": (45, 45)}
# What fails, and the words its failures.jsonl message has.
BROKEN = {"truncated.jpg": "corrupt or truncated", "text.png": "not an image file", "empty.jpg": "empty file"}


def make_folder(folder: Path) -> None:
    rng = np.random.default_rng(7)
    for name, size in PHOTOS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / name, quality=95)
    jpeg = (folder / "a.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "text.png").write_text("not an image at all")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("ignored")
    (folder / "d.mp4").write_bytes(b"a video (inference.py's): d.png's outputs are d_png_*")
    (folder / ".hidden.png").write_bytes(b"hidden: never read")


def run(args, capsys) -> tuple[int, str, str]:
    status = matte_beam.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def pngs(folder: Path) -> dict[str, np.ndarray]:
    return {path.relative_to(folder).as_posix(): np.asarray(Image.open(path)).astype(int)
            for path in sorted(folder.rglob("*.png"))}


def failures(folder: Path) -> dict[str, dict]:
    lines = (folder / "failures.jsonl").read_text().splitlines()
    return {Path(record["path"]).name: record for record in map(json.loads, lines)}


def leftovers(folder: Path) -> list[Path]:
    """Temporary files or folders of a write (ours are hidden, Beam's are beam-temp-*)."""
    return [path for path in folder.rglob("*") if path.name.startswith((".", "beam-temp"))]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    make_folder(folder)
    return folder


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory) -> dict[str, np.ndarray]:
    """inference.py's outputs of the same folder, model and options."""
    out = tmp_path_factory.mktemp("reference")
    status = inference.main([str(arg) for arg in ["--input", photos, "--recursive", "--output", out,
                                                  "--background", "lime", *ARGS]])
    assert status == 1  # the broken files and the fake video
    return pngs(out)


def assert_same_outputs(folder: Path, reference: dict[str, np.ndarray]) -> None:
    outputs = pngs(folder)
    assert sorted(outputs) == sorted(reference)
    for name, array in outputs.items():
        assert array.shape == reference[name].shape, name
        assert np.abs(array - reference[name]).max() <= 1, name  # alpha within 1/255


def test_pipeline_gives_inference_outputs_records_failures_and_reruns_only_what_is_missing(
        photos, reference, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--input", f"{photos}/**", "--output", out, "--background", "lime", *ARGS]
    status, text, errors = run(args, capsys)
    assert status == 1
    assert ("5 processed, 0 skipped (outputs exist), 3 failed, 1 non-image files ignored, 1 videos left out"
            in text), text
    assert_same_outputs(out, reference)
    assert {"a_jpg_alpha.png", "a_png_alpha.png", "d_png_alpha.png", "sub/b_alpha.png"} <= set(pngs(out))
    recorded = failures(out)
    assert set(recorded) == set(BROKEN)
    for name, words in BROKEN.items():
        assert recorded[name]["stage"] == "reading"
        assert recorded[name]["error"].startswith(str(photos / name)) and words in recorded[name]["error"]
        assert f"error: {recorded[name]['error']}" in errors
    assert not leftovers(out)

    # A rerun does nothing that is done; a lost output is remade alone.
    (out / "c_rgba.png").unlink()
    kept = {path: path.stat().st_mtime_ns for path in out.rglob("*.png")}
    status, text, _ = run(args, capsys)
    assert "1 processed, 4 skipped (outputs exist), 3 failed" in text
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in kept.items())
    assert set(failures(out)) == set(BROKEN)  # still failing, still listed once
    assert_same_outputs(out, reference)

    status, text, _ = run([*args, "--overwrite"], capsys)
    assert "5 processed, 0 skipped" in text
    assert all(path.stat().st_mtime_ns != mtime for path, mtime in kept.items())
    assert_same_outputs(out, reference)
    assert not leftovers(out)


def test_two_worker_processes_give_the_same_outputs(photos, reference, tmp_path, capsys):
    out = tmp_path / "out"
    status, text, _ = run(["--input", f"{photos}/**", "--output", out, "--background", "lime", *ARGS,
                           "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"], capsys)
    assert status == 1 and "5 processed, 0 skipped (outputs exist), 3 failed" in text, text
    assert_same_outputs(out, reference)
    assert set(failures(out)) == set(BROKEN)
    assert not leftovers(out)


def test_folder_input_is_its_files_like_inference(photos, tmp_path, capsys):
    status, text, _ = run(["--input", photos, "--output", tmp_path, *ARGS], capsys)
    assert "4 processed, 0 skipped (outputs exist), 3 failed" in text  # sub/ needs --recursive
    assert not (tmp_path / "sub").exists()


def test_list_file_on_a_remote_filesystem(photos, reference, tmp_path, capsys, monkeypatch):
    """Every file access through Beam's FileSystems, as for gs:// or s3:// (on local paths here)."""
    monkeypatch.setattr(shm_beam, "is_local", lambda path: False)
    folder = tmp_path / "in"
    shutil.copytree(photos, folder)
    listing = folder / "list.txt"
    listing.write_text(f"# photos\nsub/b.png\n\n./c.png\n{photos / 'a.jpg'}\nmissing.png\ntext.png\n")
    out = tmp_path / "out"
    status, text, _ = run(["--input-list", listing, "--output", out, "--background", "lime", *ARGS], capsys)
    assert status == 1 and "3 processed, 0 skipped (outputs exist), 2 failed" in text, text
    # a.jpg alone in the list is named a; absolute entries are named by their file name.
    expected = {name.replace("a_jpg", "a"): array for name, array in reference.items()
                if name.startswith(("sub/b_", "c_", "a_jpg_"))}
    assert_same_outputs(out, expected)
    assert set(failures(out)) == {"missing.png", "text.png"}
    assert not leftovers(out)
    status, text, _ = run(["--input-list", listing, "--output", out, "--background", "lime", *ARGS], capsys)
    assert "0 processed, 3 skipped (outputs exist), 2 failed" in text


def test_bad_arguments_give_one_line_and_status_2(photos, tmp_path, capsys):
    for args, words in [(["--input", f"{tmp_path}/nothing/*.jpg"], "no file matches"),
                        (["--input-list", tmp_path / "absent.txt"], "no such list file"),
                        (["--input", photos, "--weights", tmp_path / "absent.onnx"], "no such model file"),
                        (["--input", photos, "--background", "nocolour"], "neither an image file nor a colour")]:
        status, _, errors = run([*args, "--output", tmp_path / "out"], capsys)
        lines = [line for line in errors.splitlines() if line.startswith("error")]
        assert status == 2 and len(lines) == 1 and words in lines[0], errors
    with pytest.raises(SystemExit) as stop:  # the shell expanded an unquoted pattern
        matte_beam.parse_args(["--input", str(photos / "a.jpg"), str(photos / "c.png"), "--direct_num_workers", "2"])
    assert stop.value.code == 2 and "quote --input's pattern" in capsys.readouterr().err


def test_inputs_are_named_under_the_pattern_folder():
    assert shm_beam.pattern_root("photos/**/*.jpg") == "photos/"
    assert shm_beam.pattern_root("gs://bucket/set/img_*.png") == "gs://bucket/set/"
    assert shm_beam.pattern_root("a.jpg") == ""
    assert list(shm_beam.list_entries(" sub/x.jpg ", "gs://b/lists")) == [("gs://b/lists/sub/x.jpg", "sub/x.jpg")]
    assert list(shm_beam.list_entries("../x.jpg", "lists")) == [("../x.jpg", "x.jpg")]
    assert list(shm_beam.list_entries("gs://b/y.png", "lists")) == [("gs://b/y.png", "y.png")]
    assert list(shm_beam.list_entries("# comment", "lists")) == []
    assert shm_beam.folder_pattern("gs://b/photos/", recursive=True) == "gs://b/photos/**"


def test_threads_fit_the_worker():
    cores = len(os.sched_getaffinity(0))
    assert shm_beam.threads_per_process(None) == 1
    assert shm_beam.threads_per_process(1) == cores
    assert shm_beam.threads_per_process(2 * cores) == 1


def test_a_failing_network_batch_is_recorded_and_the_others_go_on(photos, tmp_path, capsys, monkeypatch):
    from shm.inference import Matter

    matte_batch = Matter.matte_batch

    def fail_on_c(self, images, **kwargs):
        if any(image.shape[:2] == PHOTOS["c.png"] for image in images):
            raise RuntimeError("network exploded\non two lines")
        return matte_batch(self, images, **kwargs)

    monkeypatch.setattr(Matter, "matte_batch", fail_on_c)
    status, text, _ = run(["--input", photos, "--output", tmp_path, *ARGS, "--batch-size", "1"], capsys)
    assert status == 1 and "3 processed, 0 skipped (outputs exist), 4 failed" in text, text
    record = failures(tmp_path)["c.png"]
    assert record["stage"] == "matting" and record["error"] == f"{photos / 'c.png'}: RuntimeError: on two lines"
    assert (tmp_path / "d_png_alpha.png").is_file() and not (tmp_path / "c_alpha.png").exists()


def test_a_remote_model_is_copied_once_to_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setattr(shm_beam, "is_local", lambda path: False)
    model = tmp_path / "remote" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"model bytes")
    local = Path(shm_beam.local_model_file(str(model)))
    assert local != model and local.name == "model.onnx" and local.read_bytes() == b"model bytes"


def test_setup_py_installs_the_onnx_path_on_workers_with_the_tested_ranges():
    setup = runpy.run_path(str(Path(__file__).parents[1] / "setup.py"), run_name="setup")
    requirements = setup["worker_requirements"]()
    assert [re.split("[<>=]", line)[0] for line in requirements] == \
        ["numpy", "opencv-python-headless", "tqdm", "pillow", "onnxruntime"]
    assert "onnxruntime>=1.31,<2" in requirements


@pytest.mark.parametrize("has_dirs", [True, False], ids=["filesystem with folders", "object store"])
def test_remote_writes_leave_whole_files_only(tmp_path, monkeypatch, has_dirs):
    from apache_beam.io.localfilesystem import LocalFileSystem

    monkeypatch.setattr(shm_beam, "is_local", lambda path: False)
    monkeypatch.setattr(LocalFileSystem, "has_dirs", lambda self: has_dirs)
    renames = []
    monkeypatch.setattr(shm_beam.FileSystems, "rename", lambda sources, targets: renames.append(targets) or
                        os.replace(sources[0], targets[0]))
    alpha = np.arange(12, dtype=np.uint8).reshape(3, 4)
    shm_beam.write_png(str(tmp_path / "sub" / "x_alpha.png"), alpha)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "sub" / "x_alpha.png")), alpha)
    assert renames == ([[str(tmp_path / "sub" / "x_alpha.png")]] if has_dirs else [])
    assert not leftovers(tmp_path)
    if has_dirs:  # a failed rename leaves neither the temporary nor a partial output
        def fail(sources, targets):
            raise OSError("rename refused")

        monkeypatch.setattr(shm_beam.FileSystems, "rename", fail)
        with pytest.raises(OSError, match="rename refused"):
            shm_beam.write_png(str(tmp_path / "y_alpha.png"), alpha)
        assert not leftovers(tmp_path) and not (tmp_path / "y_alpha.png").exists()


def test_runners_give_the_processes_that_share_a_machine():
    from apache_beam.options.pipeline_options import PipelineOptions

    def processes(*args):
        return shm_beam.processes_per_machine(PipelineOptions(list(args)))

    assert processes() == 1 and processes("--direct_num_workers", "2") == 2
    assert processes("--direct_num_workers", "0") is None  # one per core
    assert processes("--runner", "DataflowRunner") is None  # one SDK process per vCPU
    assert processes("--runner", "FlinkRunner") == 1
    assert processes("--runner", "FlinkRunner", "--sdk_worker_parallelism", "4") == 4


def test_naming_groups_give_the_names_collect_jobs_gives(tmp_path):
    from shm.jobs import collect_jobs

    names = ["a.jpg", "a.png", "a.JPG", "b.jpg", "b.png", "b_jpg.png", "b_jpg_2.webp", "IMG_0001.jpg",
             "IMG_0002.jpg", "sub/c.png", "Sub/c.jpg", "d.png", "d.mp4", "notes.txt"]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    expected = {str(job.path): job.output_stem.relative_to(tmp_path / "out").as_posix()
                for job in collect_jobs(tmp_path, tmp_path / "out", recursive=True)[0] if not job.is_video}
    groups = {}
    for entry in sorted((str(tmp_path / name), name) for name in names):
        for key, value in shm_beam.SelectMedia(str(tmp_path / "out")).process(entry):
            groups.setdefault(key, []).append(value)
    assert len(groups) > 5  # a group is a stem and its variants, not the folder
    jobs = [job for group in groups.items() for job in shm_beam.NameOutputs(str(tmp_path / "out")).process(group)]
    assert {job.path: job.output_stem.removeprefix(f"{tmp_path / 'out'}/") for job in jobs} == expected
