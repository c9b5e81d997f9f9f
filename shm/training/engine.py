"""The training engine shared by the three stages: a Keras trainer around one network, and `fit_stage`.

`StageTrainer` takes the batch dicts of `shm.data` as they are (features and targets together),
runs its stage's network, computes the loss parts of `shm.losses` and logs each part and the
validation quality (whole-image SAD/MSE of alpha, or trimap pixel accuracy) as Keras metrics, so
progress bars, the CSV log, TensorBoard and the plots all see them. It also holds the training
counters (`completed_epochs`, `best_score`) as variables, so one `save_weights` file is a complete
resume state: network, optimiser and counters, written atomically in one rename.
"""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

import keras
import tensorflow as tf
from keras import ops

from models.fusion import Fusion
from shm import losses
from shm.console import report
from shm.io import sweep_stale_temporaries
from shm.training import callbacks as training_callbacks
from shm.training import checkpoints
from shm.training.distribute import is_chief, is_multi_worker
from shm.training.options import TrainOptions

STAGES = ("tnet", "mnet", "shm")
LOSS_PARTS = {
    "tnet": ("trimap_loss",),
    "mnet": ("alpha_loss", "comp_loss", "raw_alpha_loss"),
    "shm": ("alpha_loss", "comp_loss", "trimap_loss"),
}
# The quantity whose validation value picks the best checkpoint (lower is better).
MONITORED = {"tnet": "loss", "mnet": "sad", "shm": "sad"}


def per_image_sad(alpha_pred, alpha_true):
    """Whole-image SAD per image, in thousands (as `shm.metrics.sad_whole`): (B, H, W, 1) -> (B,)."""
    difference = ops.abs(ops.cast(alpha_pred, "float32") - ops.cast(alpha_true, "float32"))
    return ops.sum(difference, axis=(1, 2, 3)) / 1000.0


def per_image_mse(alpha_pred, alpha_true):
    """Whole-image MSE per image (as `shm.metrics.mse_whole`): (B, H, W, 1) -> (B,)."""
    difference = ops.cast(alpha_pred, "float32") - ops.cast(alpha_true, "float32")
    return ops.mean(ops.square(difference), axis=(1, 2, 3))


def trimap_accuracy(trimap_probs, trimap_true):
    """Fraction of pixels whose most likely class is the true one: (B, H, W, 3) each -> (B,)."""
    hits = ops.equal(ops.argmax(trimap_probs, axis=-1), ops.argmax(trimap_true, axis=-1))
    return ops.mean(ops.cast(hits, "float32"), axis=(1, 2))


class StageTrainer(keras.Model):
    """Trains the network of one stage on `shm.data` batch dicts and logs every loss part.

    - `"tnet"`: `network(image)` -> trimap probabilities; loss `L_t`.
    - `"mnet"`: `network(concat(image, input trimap))` -> raw alpha, fused with that trimap
      (`alpha_p = F + U * alpha_r`; the pipeline perturbs the true trimap into T-Net-like
      probabilities); loss `L_p = w_alpha L_alpha + w_comp L_comp + w_raw L_raw` over the edge band.
    - `"shm"`: `network(image)` -> the SHM outputs dict; the joint loss with `w_trimap L_t`.

    `saved_network` (default `network`) is what the best/last weights files hold, e.g. the T-Net
    alone when `network` puts an input normalisation in front of it.
    """

    def __init__(self, network: keras.Model, stage: str,
                 loss_weights: losses.LossWeights = losses.LossWeights(),
                 saved_network: keras.Model | None = None, **kwargs):
        super().__init__(**kwargs)
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        self.network = network
        self.saved_network = network if saved_network is None else saved_network
        self.stage = stage
        self.loss_weights = loss_weights
        self.fusion = Fusion(name="fusion") if stage == "mnet" else None
        self.part_trackers = [keras.metrics.Mean(name=name) for name in LOSS_PARTS[stage]]
        quality = ("trimap_accuracy",) if stage == "tnet" else ("sad", "mse")
        self.quality_trackers = [keras.metrics.Mean(name=name) for name in quality]
        self.completed_epochs = keras.Variable(0, dtype="int64", trainable=False, name="completed_epochs")
        self.best_score = keras.Variable(math.inf, dtype="float32", trainable=False, name="best_score")

    def call(self, batch: Mapping, training: bool = False) -> dict:
        image = batch["image"]
        if self.stage == "tnet":
            return {"trimap": self.network(image, training=training)}
        if self.stage == "mnet":
            trimap = ops.cast(batch["trimap"], image.dtype)
            alpha_raw = self.network(ops.concatenate([image, trimap], axis=-1), training=training)
            return {"alpha_raw": alpha_raw, "alpha": self.fusion([ops.cast(trimap, alpha_raw.dtype), alpha_raw])}
        return self.network(image, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy, Keras 3.15 first averages one batch across replicas with a single
        # `strategy.reduce` over the whole dict, which MultiWorkerMirroredStrategy cannot do.
        # `fit_stage` builds the trainer and its optimiser beforehand, so there is nothing to build.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def loss_parts(self, batch: Mapping, outputs: Mapping) -> dict:
        """The named loss parts of this stage (float32 scalars), `"loss"` being their weighted sum."""
        if self.stage == "tnet":
            return losses.tnet_losses(outputs["trimap"], batch)
        if self.stage == "mnet":
            return losses.matting_losses(outputs["alpha"], batch, self.loss_weights, alpha_raw=outputs["alpha_raw"])
        return losses.shm_losses(outputs, batch, self.loss_weights)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        parts = self.loss_parts(x, y_pred)
        for tracker in self.part_trackers:
            tracker.update_state(parts[tracker.name])
        total = parts["loss"]
        if self.losses:
            total = total + ops.sum([ops.cast(loss, "float32") for loss in self.losses])
        # Each replica's gradients are summed across replicas: scale so the sum is the global mean.
        return total / tf.distribute.get_strategy().num_replicas_in_sync

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self.stage == "tnet":
            values = {"trimap_accuracy": trimap_accuracy(y_pred["trimap"], x["trimap"])}
        else:
            values = {"sad": per_image_sad(y_pred["alpha"], x["alpha"]),
                      "mse": per_image_mse(y_pred["alpha"], x["alpha"])}
        for tracker in self.quality_trackers:
            tracker.update_state(values[tracker.name])
        results = self.get_metrics_result()
        if is_multi_worker(tf.distribute.get_strategy()):
            # Keras 3.15 averages each step output across workers along axis 0, which a scalar
            # lacks (tensorflow/tensorflow#72388): the synced metric values get that axis.
            results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
        return results


BATCH_SHAPES = {"image": (None, None, None, 3), "trimap": (None, None, None, 3), "alpha": (None, None, None, 1),
                "fg": (None, None, None, 3), "bg": (None, None, None, 3), "has_fg_bg": (None,),
                "raw_alpha_band": (None, None, None, 1)}


def conform_batch(batch: Mapping) -> dict:
    """Give each key of a batch dict the rank and channels of docs/design.md (a pipeline op may lose
    the static shape); a batch that contradicts them fails here with the key's name."""
    return {key: tf.ensure_shape(value, BATCH_SHAPES[key]) if key in BATCH_SHAPES else value
            for key, value in batch.items()}


def _shard_by_data(dataset: tf.data.Dataset | None) -> tf.data.Dataset | None:
    # Our pipelines are not file-based at the source (they zip decoded tensors), so shard elements.
    if dataset is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit_stage(build_trainer: Callable[[], StageTrainer], train_data: tf.data.Dataset,
              val_data: tf.data.Dataset | None, options: TrainOptions,
              strategy: tf.distribute.Strategy | None = None,
              extra_callbacks: Sequence[keras.callbacks.Callback] = (),
              validators: Sequence[keras.callbacks.Callback] = (), monitor: str | None = None) -> StageTrainer:
    """Train (or resume) one stage; write checkpoints, the CSV log, TensorBoard logs and plots.

    `build_trainer` is called inside the strategy's scope. Of the run's `options` the engine reads
    `out_dir`, `resume`, the epochs and learning rate of the trainer's stage (`epochs_for`,
    `lr_for`), `final_lr_fraction`, `ema_momentum` (`callbacks.AveragedWeights`), `steps_per_epoch`
    (None: one pass over `train_data`), `tensorboard`, `verbose`, `quiet` (nothing printed; errors
    still raise) and `preset` (named in the closing summary); the rest is the stages'.
    With `resume`, training goes on from `out_dir`'s resume state (network, optimiser, epoch);
    without it, an out-dir that already holds a run is refused, so no checkpoint is ever
    overwritten by mistake.
    Raises `TrainingDiverged` when a loss becomes NaN or infinite (the last good checkpoint
    stays) and `CheckpointError` for an unusable resume state or an out-dir another training is
    writing into (`checkpoints.out_dir_lock`); temporaries of killed runs there are removed.
    `extra_callbacks` run after the engine's own (so they see each epoch's checkpoint already written);
    `validators` run before the checkpoint writer and add to the logs (e.g. `callbacks.PhotoValidation`),
    and `monitor` names the logged quantity that picks the best epoch (default: the stage's
    `MONITORED`, on validation data).
    """
    strategy = strategy or tf.distribute.get_strategy()
    out_dir = Path(options.out_dir)
    chief = is_chief(strategy)
    train_data = train_data.map(conform_batch)
    val_data = None if val_data is None else val_data.map(conform_batch)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        train_data, val_data = _shard_by_data(train_data), _shard_by_data(val_data)
    if val_data is not None and val_data.cardinality() == tf.data.UNKNOWN_CARDINALITY:
        # Keras warns "Your input ran out of data" after each validation of a data set of unknown
        # length (ours: grouped by shape), so count its batches once.
        batches = int(val_data.reduce(0, lambda count, _: count + 1))
        val_data = val_data.apply(tf.data.experimental.assert_cardinality(batches))
    # Only the chief writes into out_dir, so only it takes the lock (workers may share the folder).
    with checkpoints.out_dir_lock(out_dir) if chief else contextlib.nullcontext():
        if chief:
            for path in sweep_stale_temporaries(out_dir):
                report(f"removed {path}: a temporary file of an interrupted run", options.quiet)
        if not options.resume:
            checkpoints.refuse_existing_run(out_dir)
        return _fit(build_trainer, train_data, val_data, options, strategy, extra_callbacks, validators, monitor,
                    chief)


def _fit(build_trainer, train_data, val_data, options: TrainOptions, strategy, extra_callbacks, validators,
         monitor: str | None, chief: bool) -> StageTrainer:
    out_dir = Path(options.out_dir)
    with strategy.scope():
        trainer = build_trainer()
        learning_rate, epochs = options.lr_for(trainer.stage), options.epochs_for(trainer.stage)
        averaging = options.ema_momentum > 0
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate, use_ema=averaging,
                                                        ema_momentum=options.ema_momentum))
        trainer(next(iter(train_data)))  # create every variable before a resume state is loaded
        trainer.optimizer.build(trainer.trainable_variables)
    initial_epoch = checkpoints.restore(trainer, out_dir, options.quiet) if options.resume else 0
    if initial_epoch >= epochs:
        report(f"{out_dir}: already trained for {initial_epoch} epochs (--epochs {epochs}); nothing to do",
               options.quiet)
        return trainer

    if monitor is None:
        monitor = MONITORED[trainer.stage]
        monitor = f"val_{monitor}" if val_data is not None else monitor
    history = training_callbacks.HistoryWriter(out_dir, initial_epoch, write=chief)
    callbacks = [
        training_callbacks.cosine_schedule(learning_rate, epochs, options.final_lr_fraction),
        training_callbacks.NonFiniteGuard(out_dir),
        *([training_callbacks.AveragedWeights(resumed=initial_epoch > 0)] if averaging else []),
        *validators,
        # The log before the checkpoint: a kill between the two leaves a log row that the resumed
        # run drops and redoes, never a checkpointed epoch missing from the log.
        history,
        training_callbacks.CheckpointWriter(out_dir, monitor, write=chief),
    ]
    callbacks.extend(extra_callbacks)
    if options.tensorboard and chief:
        callbacks.append(keras.callbacks.TensorBoard(str(out_dir / checkpoints.TENSORBOARD_DIR),
                                                     update_freq="epoch", profile_batch=0))
    # "auto": the progress bar's backspaces and colour codes would fill a log file.
    verbose = (1 if sys.stdout.isatty() else 2) if options.verbose == "auto" else options.verbose
    verbose = 0 if options.quiet else verbose
    trainer.fit(train_data, validation_data=val_data, epochs=epochs, initial_epoch=initial_epoch,
                steps_per_epoch=options.steps_per_epoch, callbacks=callbacks, shuffle=False,
                verbose=verbose if chief else 0)
    if chief:
        report(training_summary(trainer.stage, out_dir, monitor, history.rows, options.preset), options.quiet)
    return trainer


NEXT_STEPS = {
    "tnet": "next, stage 2: python pretrain_mnet.py --data-dir DATA --out-dir runs/mnet --preset {preset}; "
            "then stage 3 with --tnet-weights {best}",
    "mnet": "next, stage 3: python combined_model.py --data-dir DATA --out-dir runs/shm --preset {preset} "
            "--tnet-weights runs/tnet/best.weights.h5 --mnet-weights {best}",
    "shm": "next: python inference.py --weights {best} --preset {preset} --input photos/ --output out/; "
           "or export it once for the fast default backend: python export.py --weights {best} --preset {preset} "
           "--format onnx --dynamic-size --output shm_{preset}.onnx",
}


def training_summary(stage: str, out_dir: Path, monitor: str, rows: Sequence[Mapping], preset: str | None) -> str:
    """The closing lines of a training run: its best epoch and score (from the log rows), where the
    weights are, and the next command."""
    best_path = Path(out_dir) / checkpoints.BEST_WEIGHTS
    scored = [row for row in rows if row.get(monitor) not in (None, "")]
    if scored:
        best = min(scored, key=lambda row: float(row[monitor]))
        headline = (f"training done: best epoch {best['epoch']} of {rows[-1]['epoch']} "
                    f"({monitor} {float(best[monitor]):.4g}): {best_path}")
    else:
        headline = f"training done: {best_path}"
    return "\n".join([headline,
                      f"last epoch's weights {Path(out_dir) / checkpoints.LAST_WEIGHTS}; log {Path(out_dir) / checkpoints.LOG_CSV}",
                      NEXT_STEPS[stage].format(best=best_path, preset=preset or "PRESET")])
