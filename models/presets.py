"""Named configurations of the whole SHM model (`models.build_shm(preset=...)`) and of its inference.

Plain data, importable without TensorFlow (`inference.py` on a TFLite model never loads it).
Each preset is a dict of settings, any of which `build_shm(preset, **overrides)` can replace:
- `tnet`: which T-Net (`models.shm.TNETS`: its builder and the input normalisation the SHM graph
  puts in front of it); `tnet_kwargs`: the builder's arguments (`input_size` is added when the
  T-Net runs at the image size, i.e. `tnet_size` is None); `tnet_size`: its working size.
- `mnet_kwargs`: arguments of `build_mnet` (widths, decoder kernel size).
- `working_size`: the M-Net size training and inference use by default; `size_multiple`: what
  every input size must be a multiple of.
- `weights`: the shipped model files by backend (`keras`: the whole model, `onnx`: its
  dynamic-size export), relative to the project (`shipped_file` finds them); `default_backend`: what `shm.Matter.from_preset`
  and `inference.py` run by default, the fastest correct path measured on CPU (docs/benchmarks.md,
  speed study): ONNX Runtime for both (lite: its dynamic-size export, 256x320 in 28 ms against
  TFLite's 34 and Keras' 46; pspnet50 ships no weights: export a trained `.keras` with
  `export.py --format onnx --dynamic-size`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

SOURCE_ROOT = Path(__file__).resolve().parents[1]
# Where `pip install .` puts the shipped files (pyproject.toml's data-files), below sys.prefix.
INSTALLED_DATA = Path("share") / "shm-keras"


def shipped_file(relative: str) -> Path:
    """A file that ships with the project, such as `weights/shm_lite.onnx`: in the source tree
    (a clone, or `pip install -e .`), else where `pip install .` put it (`PREFIX/share/shm-keras/`)."""
    for root in (SOURCE_ROOT, Path(sys.prefix) / INSTALLED_DATA):
        if (root / relative).exists():
            return root / relative
    return SOURCE_ROOT / relative

VGG16_WIDTHS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
# An eighth of VGG16's widths, the same M-Net shape: the full-resolution convs dominate the time,
# and at a quarter the lite model took ~75 ms at 320x320 on 2 cores instead of ~50 (docs/models.md).
LITE_MNET_WIDTHS = ((8, 8), (16, 16), (32, 32, 32), (64, 64, 64), (64, 64, 64))

PRESETS: dict[str, dict[str, Any]] = {
    "pspnet50": {
        "description": "the paper's SHM: PSPNet-50 T-Net at 473x473, VGG16-wide M-Net",
        "tnet": "pspnet50",
        "tnet_kwargs": {"n_classes": 3, "input_size": 473},
        "tnet_size": 473,
        "mnet_kwargs": {"encoder_widths": VGG16_WIDTHS, "decoder_kernel_size": 5},
        "working_size": 512,
        "size_multiple": 16,
        "weights": {},
        "default_backend": "onnx",
    },
    "lite": {
        "description": "light SHM for CPU: MobileNetV2 + U-Net T-Net at the image size, slim M-Net",
        "tnet": "light_tnet",
        # A fresh SHM is for loading trained stages into: no ImageNet file needed to build it.
        "tnet_kwargs": {"backbone_weights": None},
        "tnet_size": None,
        "mnet_kwargs": {"encoder_widths": LITE_MNET_WIDTHS, "decoder_kernel_size": 3},
        "working_size": 320,
        "size_multiple": 32,
        "weights": {"keras": "weights/shm_lite.keras", "onnx": "weights/shm_lite.onnx"},
        "default_backend": "onnx",
    },
}
# The lite model with an EfficientNet-Lite0 encoder in its T-Net (same decoder, M-Net and sizes),
# to compare with MobileNetV2 by training; no shipped weights yet.
PRESETS["lite_efficientnet"] = {
    **PRESETS["lite"],
    "description": "light SHM for CPU with an EfficientNet-Lite0 + U-Net T-Net at the image size, slim M-Net",
    "tnet_kwargs": {"backbone": "efficientnet_lite0", "backbone_weights": None},
    "weights": {},
}
