"""Named configurations of the whole SHM model (`SemanticHumanMatting.from_preset(...)`) and of its
inference: the one place that says which networks, at which sizes, with which weights.

Plain data, importable without TensorFlow (`inference.py` on a TFLite model never loads it).
Each preset is a dict of settings, any of which `from_preset(preset, **overrides)` can replace:
- `tnet`: the T-Net's builder, a name in `models` (`build_pspnet50`, `build_light_tnet`);
  `tnet_kwargs`: its arguments (`input_size` is added when the T-Net runs at the image size, i.e.
  `tnet_size` is None); `tnet_size`: its working size; `tnet_mean` / `tnet_std`: the `Normalize`
  the SHM graph puts in front of a T-Net that takes preprocessed input (None: RGB [0, 1] itself).
- `mnet_kwargs`: arguments of `models.mnet.MNet` (widths, decoder kernel size).
- `working_size`: the M-Net size training and inference use by default; `size_multiple`: what
  every input size of the whole model must be a multiple of (the M-Net's 4 poolings need 16, the
  MobileNetV2 of the light T-Net 32).
- `weights`: the shipped model files by backend (`keras`: the whole model, `onnx`: its
  dynamic-size export), relative to the project (`shipped_file` finds them); `default_backend`: what `shm.Matter.from_preset`
  and `inference.py` run by default, the fastest correct path measured on CPU (docs/benchmarks.md,
  speed study): ONNX Runtime for both (pspnet50 ships no weights: export a trained `.keras` with
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


# keras-segmentation's "sub_mean" preprocessing subtracts these from BGR pixels in [0, 255];
# `Normalize(PSPNET50_RGB_MEAN, PSPNET50_RGB_STD)` on RGB in [0, 1] gives the same values:
# (x - mean / 255) * 255 = 255 x - mean, in RGB order.
PSPNET50_BGR_MEAN_255 = (103.939, 116.779, 123.68)
PSPNET50_RGB_MEAN = tuple(m / 255.0 for m in reversed(PSPNET50_BGR_MEAN_255))
PSPNET50_RGB_STD = (1.0 / 255.0,) * 3

VGG16_WIDTHS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
# An eighth of VGG16's widths, the same M-Net shape: the full-resolution convs dominate the time,
# and only an eighth keeps the whole lite model's time near its T-Net's (timings: docs/models.md).
LITE_MNET_WIDTHS = ((8, 8), (16, 16), (32, 32, 32), (64, 64, 64), (64, 64, 64))

PRESETS: dict[str, dict[str, Any]] = {
    "pspnet50": {
        "description": "the paper's SHM: PSPNet-50 T-Net at 473x473, VGG16-wide M-Net",
        "tnet": "build_pspnet50",
        "tnet_kwargs": {"n_classes": 3, "input_size": 473},
        "tnet_size": 473,
        "tnet_mean": PSPNET50_RGB_MEAN,
        "tnet_std": PSPNET50_RGB_STD,
        "mnet_kwargs": {"encoder_widths": VGG16_WIDTHS, "decoder_kernel_size": 5},
        "working_size": 512,
        "size_multiple": 16,
        "weights": {},
        "default_backend": "onnx",
    },
    "lite": {
        "description": "light SHM for CPU: MobileNetV2 + U-Net T-Net at the image size, slim M-Net",
        "tnet": "build_light_tnet",
        # A fresh SHM is for loading trained stages into: no ImageNet file needed to build it.
        "tnet_kwargs": {"backbone_weights": None},
        "tnet_size": None,
        "tnet_mean": None,
        "tnet_std": None,
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
