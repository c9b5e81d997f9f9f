"""Named configurations of the whole SHM model (`models.build_shm(preset=...)`).

Each preset is a dict of settings, any of which `build_shm(preset, **overrides)` can replace:
- `tnet_builder`, `tnet_kwargs`: how to build the T-Net (`input_size` is added when the T-Net
  runs at the image size, i.e. `tnet_size` is None).
- `tnet_size`, `tnet_mean`, `tnet_std`: the T-Net's working size and input normalisation inside
  the SHM graph (see `SemanticHumanMatting`).
- `mnet_kwargs`: arguments of `build_mnet` (widths, decoder kernel size).
- `working_size`: the M-Net size training and inference use by default; `size_multiple`: what
  every input size must be a multiple of; `default_weights`: the shipped `.keras` file, or None.
"""

from __future__ import annotations

from typing import Any

from models.light_tnet import build_light_tnet
from models.mnet import VGG16_WIDTHS
from models.pspnet50 import PSPNET50_RGB_MEAN, PSPNET50_RGB_STD, build_pspnet50

# An eighth of VGG16's widths, the same M-Net shape: the full-resolution convs dominate the time,
# and at a quarter the lite model took ~75 ms at 320x320 on 2 cores instead of ~50 (docs/models.md).
LITE_MNET_WIDTHS = ((8, 8), (16, 16), (32, 32, 32), (64, 64, 64), (64, 64, 64))

PRESETS: dict[str, dict[str, Any]] = {
    "pspnet50": {
        "description": "the paper's SHM: PSPNet-50 T-Net at 473x473, VGG16-wide M-Net",
        "tnet_builder": build_pspnet50,
        "tnet_kwargs": {"n_classes": 3, "input_size": 473},
        "tnet_size": 473,
        "tnet_mean": PSPNET50_RGB_MEAN,
        "tnet_std": PSPNET50_RGB_STD,
        "mnet_kwargs": {"encoder_widths": VGG16_WIDTHS, "decoder_kernel_size": 5},
        "working_size": 512,
        "size_multiple": 16,
        "default_weights": None,
    },
    "lite": {
        "description": "light SHM for CPU: MobileNetV2 + U-Net T-Net at the image size, slim M-Net",
        "tnet_builder": build_light_tnet,
        # A fresh SHM is for loading trained stages into: no ImageNet file needed to build it.
        "tnet_kwargs": {"backbone_weights": None},
        "tnet_size": None,
        "tnet_mean": None,
        "tnet_std": None,
        "mnet_kwargs": {"encoder_widths": LITE_MNET_WIDTHS, "decoder_kernel_size": 3},
        "working_size": 320,
        "size_multiple": 32,
        "default_weights": "weights/shm_lite.keras",
    },
}
