"""One tiny randomly initialised `lite` SHM (dynamic size) and one float32 export per format,
built once per pytest process and shared by tests/test_inference.py and tests/test_export.py
(exports take seconds each on 2 cores). Everything lives in one temporary folder removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import keras

from models.shm import build_shm
from shm.export import SUFFIXES, ExportReport, export_model

# The size of the savedmodel / tflite / onnx exports (the lite model takes multiples of 32).
EXPORT_SIZE = 64


@functools.cache
def scratch_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="shm_tiny_exports_"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_shm("lite")


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
