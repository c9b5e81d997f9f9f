"""One tiny randomly initialised SHM of the `lite` preset (dynamic size; a one-conv T-Net and an
M-Net of 4-16 channels: 5.5 k parameters instead of 2.2 M, its weights do not matter here) and one
float32 export per format, built once per pytest process and shared by tests/test_inference.py and
tests/test_export.py. Everything lives in one temporary folder removed at exit. The real lite
network is exported once (test_export.py) and its shipped files run in test_inference.py.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import keras

from models.shm import SemanticHumanMatting
from shm.export import SUFFIXES, ExportReport, export_model
from training_helpers import tiny_tnet

# The size of the savedmodel / tflite / onnx exports (the lite model takes multiples of 32).
EXPORT_SIZE = 64
# Block 5 holds 3x3x8x16 = 1152 weights: TFLite quantizes only tensors of at least 1024 values.
TINY_MNET_WIDTHS = ((4,), (4,), (8,), (8,), (16,))


@functools.cache
def scratch_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="shm_tiny_exports_"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def tiny_shm(input_size: int | None = None) -> SemanticHumanMatting:
    """A tiny SHM of the lite preset (its sizes: multiples of 32, working size 320)."""
    return SemanticHumanMatting.from_preset("lite", input_size=input_size, tnet=tiny_tnet(),
                                            mnet_kwargs={"encoder_widths": TINY_MNET_WIDTHS})


@functools.cache
def tiny_model() -> SemanticHumanMatting:
    keras.utils.set_random_seed(0)
    return tiny_shm()


@functools.cache
def weights_path() -> Path:
    path = scratch_dir() / "tiny_lite.keras"
    tiny_model().save(path)
    return path


@functools.cache
def float32_export(format: str) -> ExportReport:
    """`export_model`'s report of the tiny model exported as `format` (the keras one keeps the
    dynamic size; the others are fixed at EXPORT_SIZE x EXPORT_SIZE)."""
    folder = scratch_dir() / "exports"
    folder.mkdir(exist_ok=True)
    size = None if format == "keras" else (EXPORT_SIZE, EXPORT_SIZE)
    return export_model(tiny_model(), format, folder / f"tiny_lite{SUFFIXES.get(format, '_savedmodel')}",
                        input_size=size)
