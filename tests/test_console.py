"""shm.console: TensorFlow's start-up lines silenced in one place, progress bars only on a terminal."""

import os
import subprocess
import sys
from pathlib import Path

from shm.console import progress

ROOT = Path(__file__).resolve().parents[1]


def test_tensorflow_prints_no_start_up_lines_through_the_training_package():
    # Every training tool imports shm.training first, which imports TensorFlow through the helper.
    # Without it: "All log messages before absl::InitializeLog()", "oneDNN custom operations are
    # on", "Could not find cuda drivers" (and "cpu_feature_guard", "failed call to cuInit" when
    # TF_CPP_MIN_LOG_LEVEL is unset).
    code = "import shm.training, tensorflow as tf; print(float(tf.reduce_sum(tf.ones(3))))"
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environment,
                         timeout=300)
    assert run.returncode == 0 and run.stderr == "" and run.stdout == "3.0\n"


def test_bars_show_only_on_a_terminal_and_never_when_quiet(capsys):
    assert progress(range(3), quiet=True).disable
    assert progress(range(3)).disable  # pytest's stderr is not a terminal

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            pass

        def flush(self):
            pass

    assert not progress(range(3), file=Terminal()).disable
    assert progress(range(3), quiet=True, file=Terminal()).disable
