"""The training engine with tiny stand-in networks: logs, checkpoints, resume, NaN guard, learning."""

import csv
import json
import math
import os

import keras
import numpy as np
import pytest

from shm import metrics
from shm.training import CheckpointError, StageTrainer, TrainingDiverged, cosine_learning_rate, fit_stage
from shm.training import checkpoints
from shm.training.callbacks import read_log, write_log
from shm.training.engine import per_image_mse, per_image_sad, training_summary, trimap_accuracy
import tiny_shm_exports
from test_io import dead_pid
from training_helpers import dataset, disc_batches, engine_options, tiny_mnet, tiny_shm, tiny_tnet


def _fit_mnet(out_dir, epochs, arrays=None, callbacks=(), **kwargs):
    keras.utils.set_random_seed(1)
    arrays = disc_batches() if arrays is None else arrays
    return fit_stage(lambda: StageTrainer(tiny_mnet(), "mnet"), dataset(arrays), dataset(arrays),
                     engine_options(out_dir, epochs, **kwargs), extra_callbacks=callbacks)


class InterruptAtEpoch(keras.callbacks.Callback):
    """Stands for a crash: stops the process's training at the start of an epoch (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_in_graph_quality_metrics_equal_the_numpy_ones():
    rng = np.random.default_rng(0)
    pred, true = rng.random((3, 5, 7, 1), np.float32), rng.random((3, 5, 7, 1), np.float32)
    np.testing.assert_allclose(per_image_sad(pred, true), metrics.sad_whole(pred, true), rtol=1e-5)
    np.testing.assert_allclose(per_image_mse(pred, true), metrics.mse_whole(pred, true), rtol=1e-5)
    probs = np.array([[[[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]]]], np.float32)
    truth = np.array([[[[1, 0, 0], [0, 1, 0]]]], np.float32)
    np.testing.assert_allclose(trimap_accuracy(probs, truth), [0.5])


def test_cosine_schedule_runs_from_the_rate_to_its_final_fraction():
    assert cosine_learning_rate(0, 1e-3, 10, final_fraction=0.01) == pytest.approx(1e-3)
    assert cosine_learning_rate(5, 1e-3, 10, final_fraction=0.0) == pytest.approx(0.5e-3)
    assert cosine_learning_rate(10, 1e-3, 10, final_fraction=0.01) == pytest.approx(1e-5)


@pytest.mark.parametrize("stage, network, parts", [
    ("tnet", tiny_tnet, {"trimap_loss", "trimap_accuracy"}),
    ("shm", tiny_shm, {"alpha_loss", "comp_loss", "trimap_loss", "sad", "mse"}),
])
def test_each_stage_logs_its_loss_parts_and_writes_its_files(tmp_path, stage, network, parts, capfd):
    arrays = disc_batches()
    keys = ("image", "trimap") if stage == "tnet" else None
    fit_stage(lambda: StageTrainer(network(), stage), dataset(arrays, keys=keys), dataset(arrays, keys=keys),
              engine_options(tmp_path, 2, verbose="auto"))
    rows = list(csv.DictReader(open(tmp_path / checkpoints.LOG_CSV)))
    assert [row["epoch"] for row in rows] == ["1", "2"]  # as the console counts: Epoch 1/2
    printed = capfd.readouterr().out
    # Off a terminal: one line per epoch, not a progress bar's backspaces and colour codes.
    assert "\x08" not in printed and "\x1b[" not in printed and "\r" not in printed
    assert "training done: best epoch " in printed and str(tmp_path / checkpoints.BEST_WEIGHTS) in printed
    assert parts | {f"val_{name}" for name in parts} | {"loss", "val_loss", "learning_rate"} <= set(rows[0])
    for name in (checkpoints.BEST_WEIGHTS, checkpoints.LAST_WEIGHTS, checkpoints.RESUME_STATE, checkpoints.CURVES_PNG):
        assert (tmp_path / name).stat().st_size > 0
    state = json.loads((tmp_path / checkpoints.STATE_JSON).read_text())
    monitored = "val_loss" if stage == "tnet" else "val_sad"
    assert state["completed_epochs"] == 2 and state["monitor"] == monitored
    assert state["best_score"] == pytest.approx(min(float(row[monitored]) for row in rows))
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"


def test_validation_data_of_unknown_length_is_not_reported_as_running_out(tmp_path):
    import warnings

    arrays = disc_batches()
    unknown_length = dataset(arrays).filter(lambda batch: True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_stage(lambda: StageTrainer(tiny_shm(), "shm"), dataset(arrays), unknown_length, engine_options(tmp_path, 2))
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    rows = list(csv.DictReader(open(tmp_path / checkpoints.LOG_CSV)))
    assert len(rows) == 2 and float(rows[1]["val_sad"]) > 0


def test_last_weights_load_into_a_fresh_network(tmp_path):
    trainer = _fit_mnet(tmp_path, 1)
    fresh = tiny_mnet()
    checkpoints.load_weights_checked(fresh, tmp_path / checkpoints.LAST_WEIGHTS, "M-Net weights")
    for loaded, trained in zip(fresh.weights, trainer.network.weights):
        np.testing.assert_array_equal(loaded.numpy(), trained.numpy())


@pytest.mark.parametrize("ema_momentum", [0.0, 0.5])
def test_resuming_equals_training_straight_through(tmp_path, ema_momentum):
    straight = _fit_mnet(tmp_path / "straight", 3, ema_momentum=ema_momentum)
    with pytest.raises(KeyboardInterrupt):
        _fit_mnet(tmp_path / "split", 3, callbacks=[InterruptAtEpoch(2)], ema_momentum=ema_momentum)
    resumed = _fit_mnet(tmp_path / "split", 3, resume=True, ema_momentum=ema_momentum)
    assert int(resumed.completed_epochs.numpy()) == 3
    # Equal only if the optimiser's moments and step count were restored with the weights.
    for a, b in zip(straight.network.weights, resumed.network.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "split" / checkpoints.LOG_CSV)))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]


class TrainedWeights(keras.callbacks.Callback):
    """Records the trainable weights after every training step."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([variable.numpy().copy() for variable in self.model.network.trainable_weights])


def test_weight_averaging_validates_and_checkpoints_the_moving_average(tmp_path):
    momentum = 0.5
    recorder = TrainedWeights()
    plain = _fit_mnet(tmp_path / "plain", 2, callbacks=[recorder])
    averaged = _fit_mnet(tmp_path / "averaged", 2, ema_momentum=momentum)
    # The average of the steps the plain run took (the same steps: averaging does not change them).
    average = recorder.steps[0]
    for weights in recorder.steps[1:]:
        average = [momentum * mean + (1 - momentum) * value for mean, value in zip(average, weights)]
    fresh = tiny_mnet()
    checkpoints.load_weights_checked(fresh, tmp_path / "averaged" / checkpoints.LAST_WEIGHTS, "M-Net weights")
    for loaded, expected, trained in zip(fresh.trainable_weights, average, recorder.steps[-1]):
        np.testing.assert_allclose(loaded.numpy(), expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(expected, trained, atol=1e-4)
    for final, expected in zip(averaged.network.trainable_weights, average):
        np.testing.assert_allclose(final.numpy(), expected, rtol=1e-5, atol=1e-6)
    # Validation scored the average, not the trained weights.
    plain_rows, averaged_rows = (list(csv.DictReader(open(tmp_path / run / checkpoints.LOG_CSV)))
                                 for run in ("plain", "averaged"))
    assert float(plain_rows[-1]["loss"]) == pytest.approx(float(averaged_rows[-1]["loss"]), rel=1e-5)
    assert float(plain_rows[-1]["val_sad"]) != pytest.approx(float(averaged_rows[-1]["val_sad"]), rel=1e-3)


@pytest.mark.parametrize("first, then", [(0.0, 0.9), (0.9, 0.0)])
def test_resuming_with_weight_averaging_switched_is_refused(tmp_path, first, then):
    _fit_mnet(tmp_path, 1, ema_momentum=first)
    with pytest.raises(CheckpointError, match="as the resume state of a run started with these flags .Skipping variable loading for optimizer"):
        _fit_mnet(tmp_path, 2, resume=True, ema_momentum=then)


def test_a_broken_resume_state_is_one_clear_error(tmp_path):
    _fit_mnet(tmp_path, 1)
    (tmp_path / checkpoints.RESUME_STATE).write_bytes(b"not an HDF5 file")
    with pytest.raises(CheckpointError, match=f"{checkpoints.RESUME_STATE}: does not fit .* as the resume state of a run started with these flags"):
        _fit_mnet(tmp_path, 2, resume=True)


def test_a_second_run_in_the_same_folder_is_refused_without_resume(tmp_path):
    _fit_mnet(tmp_path, 1)
    before = (tmp_path / checkpoints.RESUME_STATE).read_bytes()
    with pytest.raises(CheckpointError, match="--resume"):
        _fit_mnet(tmp_path, 2)
    assert (tmp_path / checkpoints.RESUME_STATE).read_bytes() == before


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    _fit_mnet(tmp_path, 1)
    kept = {name: (tmp_path / name).read_bytes() for name in (checkpoints.RESUME_STATE, checkpoints.BEST_WEIGHTS)}
    poisoned = disc_batches()
    poisoned["alpha"][5] = np.nan  # the second batch
    with pytest.raises(TrainingDiverged, match=r"epoch 2, batch 2.*after epoch 1\) is kept"):
        _fit_mnet(tmp_path, 3, arrays=poisoned, resume=True)
    for name, content in kept.items():
        assert (tmp_path / name).read_bytes() == content
    rows = list(csv.DictReader(open(tmp_path / checkpoints.LOG_CSV)))
    assert len(rows) == 1 and all(math.isfinite(float(v)) for v in rows[0].values())


def test_weights_of_another_network_are_a_clear_error(tmp_path):
    _fit_mnet(tmp_path, 1)
    with pytest.raises(CheckpointError, match=r"best.weights.h5: does not fit 'tiny_tnet'"):
        checkpoints.load_weights_checked(tiny_tnet(), tmp_path / checkpoints.BEST_WEIGHTS, "T-Net weights")
    with pytest.raises(CheckpointError, match="missing.weights.h5: no such file"):
        checkpoints.load_weights_checked(tiny_tnet(), tmp_path / "missing.weights.h5", "T-Net weights")
    (tmp_path / "broken.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(CheckpointError, match="broken.weights.h5: does not fit"):
        checkpoints.load_weights_checked(tiny_mnet(), tmp_path / "broken.weights.h5", "M-Net weights")


def test_an_shm_of_the_lite_preset_learns_synthetic_discs():
    keras.utils.set_random_seed(0)
    trainer = StageTrainer(tiny_shm_exports.tiny_shm(), "shm")  # the real lite SHM trains in test_training_cli.py
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = trainer.fit(dataset(disc_batches(8, 64)).repeat(), steps_per_epoch=1, epochs=30, verbose=0,
                          shuffle=False)
    losses = history.history["loss"]  # one step per epoch: the loss of each step
    # The last 4 steps, twice each of the 2 batches: 0.42 of the first loss measured (the tiny T-Net sees
    # 5x5 pixels, so the loss levels off there).
    assert np.mean(losses[-4:]) < 0.6 * losses[0], losses


def test_the_closing_summary_names_the_best_epoch_weights_and_next_command(tmp_path):
    rows = [{"epoch": "1", "val_sad": "9.5"}, {"epoch": "2", "val_sad": "3.25"}, {"epoch": "3", "val_sad": "4.0"}]
    text = training_summary("shm", tmp_path, "val_sad", rows, "lite")
    best = tmp_path / checkpoints.BEST_WEIGHTS
    assert text.splitlines()[0] == f"training done: best epoch 2 of 3 (val_sad 3.25): {best}"
    assert f"python inference.py --weights {best} --preset lite" in text
    assert f"python export.py --weights {best} --preset lite --format onnx --dynamic-size" in text
    assert f"--tnet-weights {best}" in training_summary("tnet", tmp_path, "val_loss", [], "lite")
    assert f"--mnet-weights {best}" in training_summary("mnet", tmp_path, "val_sad", rows, None)


def test_a_log_of_older_runs_counting_from_0_is_renumbered(tmp_path):
    write_log(tmp_path / "log.csv", [{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
    assert [row["epoch"] for row in read_log(tmp_path / "log.csv", before_epoch=2)] == ["1", "2"]


def test_a_training_into_an_out_dir_another_one_is_writing_is_refused(tmp_path):
    with checkpoints.out_dir_lock(tmp_path):
        with pytest.raises(CheckpointError, match=f"another training is writing there \\(process {os.getpid()}\\)"):
            _fit_mnet(tmp_path, epochs=1)
    assert not (tmp_path / checkpoints.RESUME_STATE).exists()
    # A killed run's temporary checkpoint goes; the lock went with its process.
    leftover = tmp_path / f".resume.weights.{dead_pid()}.abcd1234.tmp.weights.h5"
    leftover.write_bytes(b"half a checkpoint")
    _fit_mnet(tmp_path, epochs=1)
    assert (tmp_path / checkpoints.RESUME_STATE).is_file() and not leftover.exists()


def test_stage_one_sees_a_fixed_size_tnet_as_the_shm_model_does(monkeypatch):
    """Stage 1 trains a T-Net of fixed size (pspnet50's) through the resizes and normalisation the
    SHM graph puts around it (`models.shm.tnet_on_rgb`), so its probabilities are the SHM's trimap."""
    from models.shm import SemanticHumanMatting, resolve_preset
    from shm.training import stages

    tnet = tiny_tnet()
    settings = {**resolve_preset("pspnet50"), "tnet_builder": lambda **kwargs: tnet, "tnet_kwargs": {},
                "tnet_size": 24}
    monkeypatch.setattr(stages, "resolve_preset", lambda preset: settings)
    network, saved = stages.build_tnet_for_training("pspnet50")
    assert saved is tnet and network is not tnet
    model = SemanticHumanMatting(tnet, tiny_mnet(), tnet_size=24, tnet_mean=settings["tnet_mean"],
                                 tnet_std=settings["tnet_std"])
    x = np.random.default_rng(0).random((1, 40, 56, 3), dtype=np.float32)
    probabilities = np.asarray(network(x))
    assert probabilities.shape == (1, 40, 56, 3)
    np.testing.assert_allclose(probabilities, model(x)["trimap"], atol=1e-6)


def test_frozen_backbone_batchnorm_keeps_its_statistics_and_scales_while_the_rest_trains():
    import keras
    import numpy as np

    from shm.training.stages import build_tnet_for_training, freeze_backbone_batchnorm

    network, tnet = build_tnet_for_training("lite", imagenet_weights="none")
    frozen = freeze_backbone_batchnorm(tnet)
    assert frozen > 10
    bn = next(layer for layer in tnet.backbone._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.BatchNormalization))
    decoder_kernel = next(w for w in tnet.trainable_weights if "backbone" not in w.path and w.shape.rank == 4)
    before = {w.path: w.numpy().copy() for w in (*bn.weights, decoder_kernel)}
    network.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    targets = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (2, 32, 32))]
    network.fit(rng.random((2, 32, 32, 3), dtype=np.float32), targets, epochs=2, verbose=0)
    for weight in bn.weights:  # moving mean and variance, gamma and beta
        np.testing.assert_array_equal(weight.numpy(), before[weight.path])
    assert not np.array_equal(decoder_kernel.numpy(), before[decoder_kernel.path])
    with pytest.raises(ValueError, match="only the light T-Nets"):
        freeze_backbone_batchnorm(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
