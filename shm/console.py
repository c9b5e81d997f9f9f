"""What the command-line tools print: quiet TensorFlow start-up, progress bars only on a terminal.

- `quiet_tensorflow()`: every entry point that may import TensorFlow calls it first. It sets
  `TF_CPP_MIN_LOG_LEVEL=3` (unless the user set a level) and imports TensorFlow with the C++
  stderr captured: the lines TensorFlow's shared libraries print while loading (`port.cc` oneDNN,
  `cudart_stub.cc` "Could not find cuda drivers", the `absl::InitializeLog` warning) come before
  any setting is read, so only the capture silences them. A failing import replays what it caught.
- `progress(...)`: a tqdm bar on stderr, shown only when stderr is a terminal (a log file gets no
  `\\r` lines) and never with `quiet`.
- `report_error(message)`: one `error: ...` line on stderr, around any bar.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
from typing import Iterable, Iterator

from tqdm import tqdm

TF_LOG_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"


@contextlib.contextmanager
def _captured_stderr_fd() -> Iterator[tempfile.TemporaryFile]:
    """Send file descriptor 2 (where C++ libraries write) to a temporary file for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield capture
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


TRAIN_EXTRA_HINT = ("TensorFlow is not installed (matting alone needs none): the keras and savedmodel "
                    "backends, training and export need it: pip install \"shm-keras[train]\" (or "
                    "pip install -r requirements.txt)")


def quiet_tensorflow() -> None:
    """Import TensorFlow (once) without its start-up lines, unless `TF_CPP_MIN_LOG_LEVEL` asks for them.

    Raises `RuntimeError` saying how to install it where it is missing (`pip install .` alone).
    """
    level = os.environ.setdefault(TF_LOG_VARIABLE, "3")
    if "tensorflow" in sys.modules:
        return
    if importlib.util.find_spec("tensorflow") is None:
        raise RuntimeError(TRAIN_EXTRA_HINT)
    if level != "3":
        import tensorflow  # noqa: F401  the user asked for TensorFlow's log
        return
    with _captured_stderr_fd() as capture:
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)


def progress(iterable: Iterable | None = None, quiet: bool = False, **kwargs) -> tqdm:
    """A tqdm bar (on stderr) that shows only on a terminal and never when `quiet`."""
    # tqdm's disable=None means: disable when the output is not a TTY.
    return tqdm(iterable, disable=True if quiet else None, **kwargs)


def report_error(message: str) -> None:
    """`error: MESSAGE` on stderr, without breaking a progress bar."""
    tqdm.write(f"error: {message}", file=sys.stderr)


def report(message: str, quiet: bool = False, file=None) -> None:
    """A line for people (stdout by default), around any progress bar; nothing when `quiet`."""
    if not quiet:
        file = file or sys.stdout
        tqdm.write(message, file=file)
        file.flush()  # seen at once in a log file too, before a long step
