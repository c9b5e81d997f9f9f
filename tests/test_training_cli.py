"""The three stage scripts end to end on a tiny synthetic data folder (lite preset, 32-64 px).

Stage 1 and the trimap prediction run a tiny stand-in T-Net (what they do does not depend on
the network); stage 2 trains the lite preset's real M-Net, stage 3 its whole SHM from untrained
stage weights.
"""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import combined_model
import pretrain_mnet
import pretrain_tnet
from models.light_tnet import build_light_tnet
from models.mnet import MNet
from models.presets import PRESETS
from models.weights import EFFICIENTNET_LITE0_IMAGENET_PATH, MOBILENETV2_IMAGENET_PATH
import tiny_shm_exports
from shm.augment import Augmentation
from shm.geometry import network_size
from shm.inference import Matter
from shm.training import StageTrainer, checkpoints, stages
from shm.training.cli import options_from_args
from shm.training.options import DEFAULT_EPOCHS, DEFAULT_LEARNING_RATES, TrainOptions
from shm.validation import ValidationSplit, score_split
from training_helpers import tiny_tnet, write_disc_folder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_disc_folder(tmp_path_factory.mktemp("discs"), n=8, size=64)


def with_tiny_tnet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 1 and `predict` build a tiny T-Net instead of the preset's."""
    def build(*args, **kwargs):
        tnet = tiny_tnet()
        return tnet, tnet

    monkeypatch.setattr(stages, "build_tnet_for_training", build)


@pytest.fixture(scope="module")
def tnet_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tnet")
    with pytest.MonkeyPatch.context() as monkeypatch:
        with_tiny_tnet(monkeypatch)
        status = pretrain_tnet.main(["train_tnet", "--data-dir", str(data_dir), "--out-dir", str(out),
                                     "--input-size", "32", "--epochs", "1", "--imagenet-weights", "none",
                                     "--val-fraction", "0"])
    assert status == 0
    return out


@pytest.mark.parametrize("script, args", [(pretrain_tnet, ["train_tnet"]), (pretrain_tnet, ["predict"]),
                                          (pretrain_mnet, []), (combined_model, [])])
def test_help_explains_every_flag_with_an_example(script, args, capsys):
    with pytest.raises(SystemExit) as exit_:
        script.parse_args(args + ["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "python " in text  # an example command
    flags = ("--input", "--output", "--weights") if args == ["predict"] else \
        ("--data-dir", "--resume", "--strategy", "--mixed-precision", "--val-fraction", "(default: 4)")
    for flag in flags:
        assert flag in text


def test_tnet_predict_writes_trimaps_and_only_reads_the_weights(tnet_run, data_dir, tmp_path, monkeypatch):
    with_tiny_tnet(monkeypatch)
    weights = tnet_run / checkpoints.BEST_WEIGHTS
    before = weights.read_bytes()
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("0.png", "1.png"):
        (photos / name).write_bytes((data_dir / "image" / name).read_bytes())
    (photos / "broken.png").write_bytes(b"not a png")
    status = pretrain_tnet.main(["predict", "--input", str(photos), "--output", str(tmp_path / "trimaps"),
                                 "--weights", str(weights), "--input-size", "32"])
    assert status == 1  # the broken photo, reported; the others written
    assert sorted(p.name for p in (tmp_path / "trimaps").iterdir()) == ["0.png", "1.png"]
    trimap = np.asarray(Image.open(tmp_path / "trimaps" / "0.png"))
    assert trimap.shape == (64, 64) and set(np.unique(trimap)) <= {0, 128, 255}
    assert weights.read_bytes() == before


def test_tnet_predict_gives_matter_s_trimap(tnet_run, data_dir, tmp_path, monkeypatch):
    """`predict` sees a photo as `shm.Matter` does (network size, resizing, probabilities back at the
    photo's size): its trimap is Matter's with these T-Net weights, on a photo of another shape than
    the network's (64 px working size: 100x150 runs at 32x64)."""
    import keras

    from shm.inference import Matter
    from shm.io import TRIMAP_PNG_VALUES

    with_tiny_tnet(monkeypatch)
    weights = tnet_run / checkpoints.BEST_WEIGHTS
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = Image.open(data_dir / "image" / "0.png").convert("RGB").resize((150, 100), Image.BILINEAR)
    photo.save(photos / "wide.png")
    assert stages.predict_trimaps(photos, tmp_path / "trimaps", weights, working_size=64) == 0
    predicted = np.asarray(Image.open(tmp_path / "trimaps" / "wide.png"))

    tnet = tiny_tnet()
    tnet.load_weights(weights)
    image = keras.Input((None, None, 3))
    probabilities = tnet(image)
    model = keras.Model(image, {"trimap": probabilities, "alpha": probabilities[..., 2:]})
    matter = Matter(model, working_size=64)
    assert matter.network_size(100, 150) == (32, 64)
    trimap = np.asarray(TRIMAP_PNG_VALUES, np.uint8)[matter.matte(np.asarray(photo), foreground=False,
                                                                  trimap=True).trimap]
    assert predicted.shape == trimap.shape == (100, 150) and len(np.unique(predicted)) > 1
    # The same T-Net eagerly and as Matter's frozen graph: an argmax may flip where two classes tie.
    assert np.mean(predicted == trimap) > 0.999


def test_mnet_stopped_then_killed_resumes_each_time_and_finishes(data_dir, tmp_path):
    """SIGTERM stops a training like Ctrl-C (one line that says how to go on, exit 130, no
    traceback); SIGKILL mid-epoch loses only that epoch; each time --resume goes on from the last
    complete epoch, and the run ends as if never stopped."""
    out = tmp_path / "mnet"
    command = [sys.executable, "pretrain_mnet.py", "--data-dir", str(data_dir), "--out-dir", str(out),
               "--input-size", "32", "--epochs", "3", "--steps-per-epoch", "20", "--val-fraction", "0.25"]

    def completed_epochs() -> int:
        state = out / checkpoints.STATE_JSON
        return json.loads(state.read_text())["completed_epochs"] if state.exists() else 0

    def stop_after_epoch(arguments: list[str], epoch: int, stop: signal.Signals) -> tuple[int, str, str]:
        process = subprocess.Popen(arguments, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 300  # a busy machine takes minutes to import TensorFlow
            while completed_epochs() < epoch:  # the epoch saved: the next one is under way
                assert process.poll() is None and time.time() < deadline, "training ended before the checkpoint"
                time.sleep(0.05)
            os.kill(process.pid, stop)
            stdout, stderr = process.communicate(timeout=120)
        finally:
            process.kill()
            process.wait()
        return process.returncode, stdout, stderr

    status, _, stderr = stop_after_epoch(command, 1, signal.SIGTERM)
    assert status == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert "stopped (terminated by signal 15)" in stderr and "--resume" in stderr
    assert completed_epochs() == 1

    status, stdout, _ = stop_after_epoch(command + ["--resume"], 2, signal.SIGKILL)
    assert status == -signal.SIGKILL and "resuming after epoch 1" in stdout
    assert completed_epochs() == 2

    resumed = subprocess.run(command + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch 2" in resumed.stdout
    rows = list(csv.DictReader(open(out / checkpoints.LOG_CSV)))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert completed_epochs() == 3


def test_combined_model_trains_from_stage_weights_and_rejects_wrong_ones(data_dir, tmp_path, capsys):
    # The outputs of stages 1 and 2 stand in: the lite preset's T-Net and M-Net weights, untrained
    # (the stage scripts themselves run above and in test_mnet_killed_mid_epoch_resumes_and_finishes).
    tnet_run, mnet_out = tmp_path / "tnet", tmp_path / "mnet"
    tnet_run.mkdir()
    mnet_out.mkdir()
    build_light_tnet(backbone_weights=None).save_weights(tnet_run / checkpoints.BEST_WEIGHTS)
    MNet(**PRESETS["lite"]["mnet_kwargs"]).save_weights(mnet_out / checkpoints.BEST_WEIGHTS)
    common = ["--data-dir", str(data_dir), "--input-size", "32", "--epochs", "1", "--steps-per-epoch", "2",
              "--val-fraction", "0.25"]
    tnet_weights, mnet_weights = str(tnet_run / checkpoints.BEST_WEIGHTS), str(mnet_out / checkpoints.BEST_WEIGHTS)

    capsys.readouterr()
    swapped = combined_model.main(common + ["--out-dir", str(tmp_path / "bad"), "--tnet-weights", mnet_weights,
                                            "--mnet-weights", tnet_weights])
    error = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning:")]
    assert swapped == 1 and len(error) == 1
    assert error[0].startswith(f"error: {mnet_weights}: does not fit") and "T-Net weights" in error[0]

    out = tmp_path / "shm"
    assert combined_model.main(common + ["--out-dir", str(out), "--tnet-weights", tnet_weights,
                                         "--mnet-weights", mnet_weights]) == 0
    row = next(csv.DictReader(open(out / checkpoints.LOG_CSV)))
    assert {"alpha_loss", "comp_loss", "trimap_loss", "val_sad", "val_mse"} <= set(row)


def test_the_validation_split_is_seeded_and_disjoint(data_dir):
    from shm.training.stages import split_samples

    def names(fraction, seed=0):
        sources, val = split_samples(TrainOptions(data_dir=[data_dir], out_dir=data_dir, val_fraction=fraction,
                                                  seed=seed))
        (source,) = sources
        return [s.name for s in source.samples], val and [s.name for s in val]

    train, val = names(0.25)
    assert len(val) == 2 and len(train) == 6 and not set(train) & set(val)
    assert names(0.25) == (train, val) and names(0.25, seed=1) != (train, val)
    assert names(0.0)[1] is None and len(names(0.01)[1]) == 1
    with pytest.raises(ValueError, match="--val-fraction"):
        names(1.0)


@pytest.mark.parametrize("flags, message", [
    (["--lr", "-1"], "--lr must be positive, got -1.0"),
    (["--lr", "0"], "--lr must be positive, got 0.0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--working-size", "-32"], "--working-size must be at least 1, got -32"),
    (["--ema-momentum", "1"], "--ema-momentum must be in [0, 1), got 1.0"),
    (["--augment", "framing=0"], "--augment takes FIELD=VALUE with FIELD one of flip, max_zoom, reframe_prob, "
     "framing_prob, brightness, contrast, saturation, hue, composite_prob, group_prob, trimap_blur_px, "
     "trimap_smoothing, got 'framing=0'"),
])
def test_unusable_flag_values_are_refused_in_one_line(flags, message, data_dir, tmp_path, capsys):
    status = pretrain_mnet.main(["--data-dir", str(data_dir), "--out-dir", str(tmp_path / "run"), *flags])
    assert status == 1 and capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "run").exists()


def test_flags_keep_their_values(data_dir, tmp_path):
    def options(script, *flags):
        return options_from_args(script.parse_args(["--data-dir", str(data_dir), "--out-dir", str(tmp_path), *flags]))

    assert (options(pretrain_mnet).lr, options(pretrain_mnet).epochs) == (1e-4, 50)  # the stage's defaults
    assert options(pretrain_mnet, "--lr", "0.5", "--epochs", "1").lr == 0.5
    assert options(pretrain_mnet, "--augment", "group_prob=0", "flip=false").augmentation == Augmentation(
        group_prob=0.0, flip=False)
    assert options(pretrain_mnet).augmentation == Augmentation()
    assert options(pretrain_mnet, "--working-size", "64").working_size == options(pretrain_mnet, "--input-size", "64").working_size == 64
    # The Python API's None means the stage's default; any other value is used as given.
    unset = TrainOptions(data_dir=data_dir, out_dir=tmp_path)
    assert (unset.epochs, unset.lr) == (None, None)
    assert (unset.epochs_for("tnet"), unset.lr_for("tnet")) == (DEFAULT_EPOCHS["tnet"], DEFAULT_LEARNING_RATES["tnet"])
    assert (options(pretrain_mnet, "--epochs", "3").epochs_for("mnet"), options(pretrain_mnet).lr_for("mnet")) == (3, 1e-4)
    # Every script's flags are the fields of the one options object, defaults included.
    tnet = options_from_args(pretrain_tnet.parse_args(["train_tnet", "--data-dir", "d", "--out-dir", "o"]))
    shm = options_from_args(combined_model.parse_args(["--data-dir", "d", "--out-dir", "o", "--tnet-weights", "t",
                                                       "--mnet-weights", "m"]))
    defaults = {field.name: field.default for field in dataclasses.fields(TrainOptions)
                if field.name not in ("data_dir", "out_dir", "epochs", "lr", "tnet_weights", "mnet_weights")}
    for run, stage in ((tnet, "tnet"), (options(pretrain_mnet), "mnet"), (shm, "shm")):
        assert (run.epochs, run.lr) == (DEFAULT_EPOCHS[stage], DEFAULT_LEARNING_RATES[stage])
        assert {name: getattr(run, name) for name in defaults} == defaults


def test_augment_changes_the_training_views_augmentation(data_dir, monkeypatch, capsys):
    used = []
    make_dataset = stages.data.make_dataset

    def recording(stage, samples, *args, training=False, augmentation=Augmentation(), **kwargs):
        used.append((training, augmentation))
        return make_dataset(stage, samples, *args, training=training, augmentation=augmentation, **kwargs)

    monkeypatch.setattr(stages.data, "make_dataset", recording)
    options = options_from_args(pretrain_mnet.parse_args(["--data-dir", str(data_dir), "--out-dir", "o",
                                                           "--augment", "framing_prob=0", "hue=0"]))
    stages.stage_datasets(options, "mnet")
    assert used[0] == (True, Augmentation(framing_prob=0.0, hue=0.0))
    assert f"augmentation: {Augmentation(framing_prob=0.0, hue=0.0)}" in capsys.readouterr().out


@pytest.mark.parametrize("flags, geometry", [([], (320, 32)), (["--working-size", "256"], (256, 32)),
                                             (["--preset", "pspnet50"], (512, 16))])
def test_a_runs_sizes_come_from_its_preset(flags, geometry):
    args = pretrain_mnet.parse_args(["--data-dir", "d", "--out-dir", "o", *flags])
    assert options_from_args(args).geometry == geometry
    preset = PRESETS[args.preset]
    assert geometry == (args.working_size or preset["working_size"], preset["size_multiple"])


def _photo_folder(folder: Path) -> Path:
    """One 600x400 photo and its mask: the multiples 16 and 32 give it different network sizes."""
    rng = np.random.default_rng(0)
    mask = np.zeros((600, 400), np.uint8)
    mask[100:500, 100:300] = 255
    for name, pixels in (("image", rng.integers(0, 255, (600, 400, 3), np.uint8)), ("mask", mask)):
        (folder / name).mkdir(parents=True)
        Image.fromarray(pixels).save(folder / name / "p.png")
    return folder


@pytest.mark.parametrize("flags", [["--preset", "pspnet50"], ["--working-size", "256"]])
def test_photo_validation_sees_the_photos_as_the_runs_validation_data_do(flags, tmp_path):
    folder = _photo_folder(tmp_path / "val")
    options = options_from_args(combined_model.parse_args([
        "--data-dir", str(folder), "--val-dir", str(folder), "--out-dir", str(tmp_path / "run"), "--tnet-weights", "t",
        "--mnet-weights", "m", "--photo-val-dir", str(folder), "--batch-size", "1", *flags]))
    _, val, _ = stages.stage_datasets(options, "shm")
    seen_by_data = tuple(next(iter(val))["image"].shape[1:3])
    callback = stages.photo_validation(options, [ValidationSplit.from_folder(folder)])
    callback.set_model(StageTrainer(tiny_shm_exports.tiny_model(), "shm"))
    callback.on_epoch_end(0, {})
    matter = callback.matter
    assert matter.network_size(600, 400) == seen_by_data == network_size(600, 400, *options.geometry)
    if options.preset == "pspnet50":
        assert seen_by_data == (512, 336) != Matter(matter.runner, working_size=512).network_size(600, 400)


def test_photo_validation_logs_the_scores_of_the_model_being_trained(tmp_path):
    folder = _photo_folder(tmp_path / "val")
    split = ValidationSplit.from_folder(folder, name="people")
    options = TrainOptions(data_dir=[folder], out_dir=tmp_path, working_size=64)
    callback = stages.photo_validation(options, [split])
    model = tiny_shm_exports.tiny_model()
    callback.set_model(StageTrainer(model, "shm"))
    logs = {}
    callback.on_epoch_end(0, logs)
    expected = score_split(Matter(model, working_size=64).predict, split)
    assert logs == pytest.approx({"val_people_sad": expected["sad"], "val_people_iou": expected["iou"],
                                  "val_photo_sad": expected["sad"], "val_photo_iou": expected["iou"]})
    assert logs["val_photo_sad"] > 0
    matter = callback.matter
    callback.on_epoch_end(1, logs)
    assert callback.matter is matter  # one Matter for the run: each network size is traced once


def test_data_dirs_take_an_optional_weight():
    from shm.training.stages import parse_data_dir

    assert parse_data_dir("data/ccp") == (Path("data/ccp"), 1.0)
    assert parse_data_dir("data/ccp_teacher:0.5") == (Path("data/ccp_teacher"), 0.5)
    assert parse_data_dir("C:/data") == (Path("C:/data"), 1.0)  # not a number: part of the path
    with pytest.raises(ValueError, match="weight must be positive"):
        parse_data_dir("data/x:0")


@pytest.mark.parametrize("preset, imagenet_file", [("lite", MOBILENETV2_IMAGENET_PATH),
                                                   ("lite_efficientnet", EFFICIENTNET_LITE0_IMAGENET_PATH)])
def test_stage1_starts_each_lite_tnet_from_its_backbones_imagenet_file(preset, imagenet_file):
    args = pretrain_tnet.parse_args(["train_tnet", "--data-dir", "d", "--out-dir", "o", "--preset", preset])
    _, tnet = stages.build_tnet_for_training(args.preset)
    # Both stems are (3, 3, 3, 32): equal values tell which file was loaded.
    np.testing.assert_array_equal(tnet.backbone.get_layer("stem_conv").kernel.numpy(),
                                  np.load(imagenet_file)["stem_conv/kernel"])


def test_quiet_training_and_prediction_print_nothing_but_problems(data_dir, tmp_path, capfd, monkeypatch):
    with_tiny_tnet(monkeypatch)
    common = ["--data-dir", str(data_dir), "--input-size", "32", "--imagenet-weights", "none", "--val-fraction", "0",
              "--steps-per-epoch", "1"]
    capfd.readouterr()
    assert pretrain_tnet.main(["train_tnet", *common, "--epochs", "1", "--out-dir", str(tmp_path / "loud")]) == 0
    loud = capfd.readouterr().out
    # Off a terminal: the data summary, one line per epoch and the closing summary.
    assert "8 samples" in loud and " - loss: " in loud and "training done: best epoch" in loud
    out = tmp_path / "quiet"
    assert pretrain_tnet.main(["train_tnet", *common, "--epochs", "1", "--out-dir", str(out), "--quiet"]) == 0
    assert pretrain_tnet.main(["train_tnet", *common, "--epochs", "2", "--out-dir", str(out), "--quiet",
                               "--resume"]) == 0
    assert capfd.readouterr() == ("", "")
    assert [row["epoch"] for row in csv.DictReader(open(out / checkpoints.LOG_CSV))] == ["1", "2"]

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "0.png").write_bytes((data_dir / "image" / "0.png").read_bytes())
    (photos / "broken.png").write_bytes(b"not a png")
    status = pretrain_tnet.main(["predict", "--input", str(photos), "--output", str(tmp_path / "trimaps"),
                                 "--weights", str(out / checkpoints.BEST_WEIGHTS), "--input-size", "32", "--quiet"])
    printed = capfd.readouterr()
    assert status == 1 and printed.out == "" and printed.err.startswith(f"error: {photos / 'broken.png'}")
    assert len(printed.err.strip().splitlines()) == 1 and (tmp_path / "trimaps" / "0.png").is_file()


def test_every_stage_can_start_from_a_whole_shm_model(tmp_path):
    """Stage 3 takes both networks of a `.keras` SHM (going on training the shipped model); stages
    1 and 2 take its T-Net (`pretrain_tnet.py --tnet-weights`) or M-Net (`pretrain_mnet.py --mnet-weights`)."""
    from models.shm import build_shm

    rng = np.random.default_rng(0)
    shipped = build_shm("lite")
    for part in (shipped.tnet, shipped.mnet):
        part.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in part.get_weights()])
    shipped.save(tmp_path / "model.keras")
    model = stages.build_shm_from_stages("lite", tmp_path / "model.keras", tmp_path / "model.keras")
    options = TrainOptions(data_dir=[], out_dir=tmp_path, imagenet_weights="none", quiet=True,
                           tnet_weights=tmp_path / "model.keras", mnet_weights=tmp_path / "model.keras")
    started = {"tnet": stages.build_trainer("tnet", options).saved_network,
               "mnet": stages.build_trainer("mnet", options).saved_network}
    for part in ("tnet", "mnet"):
        saved = getattr(shipped, part).get_weights()
        for network in (getattr(model, part), started[part]):
            for loaded, expected in zip(network.get_weights(), saved, strict=True):
                np.testing.assert_array_equal(loaded, expected)
    # Two starts for one network is a mistake the user should hear of, not one silently overwritten.
    with pytest.raises(ValueError, match="--tnet-weights replaces the ADE20K or ImageNet start"):
        stages.build_trainer("tnet", dataclasses.replace(options, imagenet_weights="backbone.npz"))
    with pytest.raises(ValueError, match="--mnet-weights replaces --mnet-init hed"):
        stages.build_trainer("mnet", dataclasses.replace(options, mnet_init="hed"))
    tiny = tmp_path / "tiny.keras"
    tiny_shm_exports.tiny_model().save(tiny)
    with pytest.raises(checkpoints.CheckpointError, match="its tnet does not fit as T-Net weights"):
        stages.build_shm_from_stages("lite", tiny, tmp_path / "model.keras")
