"""What a training run keeps in its out-dir, written atomically, and how it is resumed.

- `best.weights.h5` / `last.weights.h5`: the stage's network alone (`network.load_weights(...)`,
  e.g. `shm.tnet.load_weights("runs/tnet/best.weights.h5")` for the next stage);
- `resume.weights.h5`: the whole trainer (network, optimiser state, completed epochs, best score):
  one file renamed into place, so a kill at any moment leaves the previous complete state;
- `state.json`: the same counters for people (epoch, best score, what is monitored);
- `log.csv`, `curves.png` (every loss part and validation SAD/MSE per epoch), `tensorboard/`;
- `.lock`: held (`fcntl.flock`) by the training writing there, so a second one is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import warnings
from pathlib import Path
from typing import Iterator

import keras

from models.weights import load_weights
from shm.console import report
from shm.io import atomic_path

BEST_WEIGHTS = "best.weights.h5"
LAST_WEIGHTS = "last.weights.h5"
RESUME_STATE = "resume.weights.h5"
STATE_JSON = "state.json"
LOG_CSV = "log.csv"
CURVES_PNG = "curves.png"
TENSORBOARD_DIR = "tensorboard"
LOCK_FILE = ".lock"


class CheckpointError(ValueError):
    """A checkpoint or weights file that is missing or does not fit the model; names the file."""


def save_weights_atomic(model: keras.Model, path: Path) -> None:
    """`model.save_weights(path)` through a temporary file renamed into place."""
    with atomic_path(path) as temporary:
        # Keras insists on the `.weights.h5` ending, which the temporary name does not keep.
        keras_named = temporary.with_suffix(".weights.h5")
        try:
            model.save_weights(str(keras_named))
            os.replace(keras_named, temporary)
        finally:
            keras_named.unlink(missing_ok=True)


def write_json_atomic(path: Path, payload: dict) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2) + "\n")


def load_weights_checked(model: keras.Model, path: str | Path, what: str) -> None:
    """Load `path` into `model`, turning a missing or mismatched file into one clear `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file ({what})")
    if not path.name.endswith(".weights.h5"):
        raise CheckpointError(f"{path}: {what} must be a Keras weights file ending in .weights.h5")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # recorded, not printed: the error below says it all
            load_weights(model, path)
        # An optimiser of another size (e.g. --ema-momentum switched) is skipped with a warning only:
        # the run would go on with fresh moments, or from a moving average that never was.
        skipped = [str(warning.message) for warning in caught if "Skipping variable loading" in str(warning.message)]
        if skipped:
            raise ValueError(skipped[0])
    except Exception as error:  # Keras and h5py raise many types for a wrong or corrupt file
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise CheckpointError(f"{path}: does not fit {model.name!r} as {what} ({reason})") from None


@contextlib.contextmanager
def out_dir_lock(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir`'s lock for the block, or raise `CheckpointError` if another process holds it:
    two trainings into one folder would interleave their checkpoints and logs. The system releases
    the lock when the process ends, however it ends (kill -9 included)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise CheckpointError(f"{out_dir}: another training is writing there (process {holder}); wait for it "
                                  "to end or choose another --out-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def refuse_existing_run(out_dir: Path) -> None:
    """A fresh run must not overwrite another run's checkpoints."""
    if (out_dir / RESUME_STATE).exists():
        raise CheckpointError(f"{out_dir}: already holds a training run ({RESUME_STATE}); "
                              "pass --resume to continue it or choose another --out-dir")


def restore(trainer: keras.Model, out_dir: Path, quiet: bool = False) -> int:
    """Load `out_dir`'s resume state into a built, compiled trainer; return the epoch to start at
    (`quiet`: without saying so)."""
    path = out_dir / RESUME_STATE
    if not path.exists():
        report(f"{out_dir}: no {RESUME_STATE} to resume from; starting from epoch 1", quiet)
        return 0
    load_weights_checked(trainer, path, "the resume state of a run started with these flags")
    epoch = int(trainer.completed_epochs.numpy())
    report(f"{path}: resuming after epoch {epoch}", quiet)
    return epoch

