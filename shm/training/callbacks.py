"""Keras callbacks of the training engine: schedule, NaN guard, checkpoints, CSV log and plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from shm.io import atomic_path
from shm.training import checkpoints

if TYPE_CHECKING:
    from shm.inference import Matter


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; training stopped before saving anything from that epoch."""


def cosine_learning_rate(epoch: int, base_rate: float, epochs: int, final_fraction: float) -> float:
    """Cosine decay per epoch from `base_rate` (epoch 0) towards `final_fraction * base_rate`."""
    progress = min(epoch / max(epochs, 1), 1.0)
    return base_rate * (final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def cosine_schedule(base_rate: float, epochs: int, final_fraction: float) -> keras.callbacks.Callback:
    """Sets the learning rate at each epoch's start from the epoch number alone, so resuming keeps it."""
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, _rate: cosine_learning_rate(epoch, base_rate, epochs, final_fraction))


def _non_finite(logs: dict | None) -> dict:
    return {name: value for name, value in (logs or {}).items()
            if np.ndim(value) == 0 and not math.isfinite(float(value))}


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss, before the epoch's checkpoint is written.

    Put it first: raising in `on_epoch_end` keeps the log and checkpoint writers from saving.
    """

    def __init__(self, out_dir: Path):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _stop(self, bad: dict, where: str):
        saved = int(self.model.completed_epochs.numpy())
        kept = (f"the last good checkpoint {self.out_dir / checkpoints.RESUME_STATE} (after epoch {saved}) is kept"
                if saved else "no checkpoint was written yet")
        values = ", ".join(f"{name}={value}" for name, value in sorted(bad.items()))
        raise TrainingDiverged(f"training stopped: non-finite loss ({values}) at epoch {self.epoch + 1}, "
                               f"{where}; {kept}. Lower --lr or check the data.")

    def on_train_batch_end(self, batch, logs=None):
        bad = _non_finite(logs)
        if bad:
            self._stop(bad, f"batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        bad = _non_finite(logs)
        if bad:
            self._stop(bad, "end of epoch")


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """With an optimiser that keeps a moving average of the weights (`use_ema`): the average is in
    the network from each epoch's end (Keras' validation, the validators, the checkpoints) to the
    next epoch's start, when the trained weights come back.

    So the resume state holds the two swapped, as every epoch's end leaves them: `resumed` (a run
    going on from one) starts with the average in the network, and the first epoch swaps it out.
    Place it before the callbacks that should see the average.
    """

    def __init__(self, resumed: bool):
        super().__init__(swap_on_epoch=True)
        self._ema_weights_in_model = resumed


class CheckpointWriter(keras.callbacks.Callback):
    """At each epoch's end: the best and last network weights, then the trainer's resume state.

    `monitor` (lower is better) picks the best epoch. `write=False` (non-chief workers) still
    updates the counters, so every worker's state stays the same, but writes nothing.
    """

    def __init__(self, out_dir: Path, monitor: str, write: bool = True):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.monitor = monitor
        self.write = write

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"cannot pick the best checkpoint: {self.monitor!r} is not logged "
                           f"(logged: {', '.join(sorted(logs))})")
        trainer = self.model
        score = float(logs[self.monitor])
        improved = score < float(trainer.best_score.numpy())
        trainer.completed_epochs.assign(epoch + 1)
        if improved:
            trainer.best_score.assign(score)
        if not self.write:
            return
        if improved:
            checkpoints.save_weights_atomic(trainer.saved_network, self.out_dir / checkpoints.BEST_WEIGHTS)
        checkpoints.save_weights_atomic(trainer.saved_network, self.out_dir / checkpoints.LAST_WEIGHTS)
        checkpoints.save_weights_atomic(trainer, self.out_dir / checkpoints.RESUME_STATE)
        checkpoints.write_json_atomic(self.out_dir / checkpoints.STATE_JSON, {
            "completed_epochs": epoch + 1, "monitor": self.monitor, "best_score": float(trainer.best_score.numpy()),
            "last": {name: float(value) for name, value in logs.items() if np.ndim(value) == 0},
        })


def read_log(path: Path, before_epoch: int) -> list[dict]:
    """Rows of an existing CSV log for the first `before_epoch` epochs (a resumed run redoes the rest).

    Epochs count from 1, as Keras' console does (`Epoch 1/50`); a log of older runs, which counted
    from 0, is renumbered.
    """
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and int(rows[0]["epoch"]) == 0:
        rows = [{**row, "epoch": str(int(row["epoch"]) + 1)} for row in rows]
    return [row for row in rows if int(row["epoch"]) <= before_epoch]


def write_log(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_curves(rows: list[dict], path: Path) -> None:
    """One panel per logged quantity (train and validation together), epochs on the x axis."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    logged = list(dict.fromkeys(n for row in rows for n in row))
    # A validation-only quantity (e.g. the photo scores) gets a panel of its own.
    names = [name.removeprefix("val_") for name in logged if name != "epoch"
             and (not name.startswith("val_") or name.removeprefix("val_") not in logged)]
    names = list(dict.fromkeys(names))
    columns = min(3, len(names))
    lines = math.ceil(len(names) / columns)
    figure, axes = pyplot.subplots(lines, columns, figsize=(4.2 * columns, 3.2 * lines), squeeze=False)
    epochs = [int(row["epoch"]) for row in rows]
    for axis, name in zip(axes.flat, names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            values = [float(row[key]) if row.get(key) not in (None, "") else math.nan for row in rows]
            if not all(math.isnan(v) for v in values):
                axis.plot(epochs, values, marker="o", label=label)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=80)
    pyplot.close(figure)


class HistoryWriter(keras.callbacks.Callback):
    """Keeps `log.csv` (one row per epoch, counted from 1) and `curves.png` up to date after every epoch.

    A resumed run keeps the rows of the epochs it does not redo, so the log never repeats an epoch.
    """

    def __init__(self, out_dir: Path, initial_epoch: int, write: bool = True):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.write = write
        self.rows = read_log(self.out_dir / checkpoints.LOG_CSV, initial_epoch) if write else []

    def on_epoch_end(self, epoch, logs=None):
        if not self.write:
            return
        row = {"epoch": epoch + 1}
        row.update({name: float(value) for name, value in (logs or {}).items() if np.ndim(value) == 0})
        self.rows.append(row)
        write_log(self.out_dir / checkpoints.LOG_CSV, self.rows)
        plot_curves(self.rows, self.out_dir / checkpoints.CURVES_PNG)


class PhotoValidation(keras.callbacks.Callback):
    """Scores the SHM model being trained on validation photos through the real inference path
    (`shm.Matter` at full resolution, `shm.validation`) after every epoch, before the checkpoint
    writer reads the logs: `val_photo_sad` / `val_photo_iou` (means over the splits) and
    `val_<split>_sad` / `val_<split>_iou` per split. Monitor `val_photo_sad` to pick the best
    epoch on what users see. `working_size` and `size_multiple`: the sizes the run's data are
    seen at (`TrainOptions.geometry`), so the photos are seen as the validation views are."""

    def __init__(self, splits, working_size: int, size_multiple: int):
        super().__init__()
        self.splits = splits
        self.working_size = working_size
        self.size_multiple = size_multiple
        self.matter = None  # made at the first epoch's end, when the model is known

    def on_epoch_end(self, epoch, logs=None):
        from shm.backends import KerasRunner
        from shm.inference import Matter
        from shm.validation import score_split

        if self.matter is None:
            # Live weights: each network size is traced once for the run, not frozen every epoch.
            self.matter = Matter(KerasRunner(self.model.network, live_weights=True), working_size=self.working_size,
                                 size_multiple=self.size_multiple)
        scores = {split.name: score_split(self.matter.predict, split) for split in self.splits}
        for name, values in scores.items():
            logs[f"val_{name}_sad"], logs[f"val_{name}_iou"] = values["sad"], values["iou"]
        logs["val_photo_sad"] = float(np.mean([values["sad"] for values in scores.values()]))
        logs["val_photo_iou"] = float(np.mean([values["iou"] for values in scores.values()]))
