"""Networks of Semantic Human Matting: T-Nets, M-Net, fusion, the SHM model, weights, presets.

`import models.presets` stays free of TensorFlow; the names below load their modules on first use.
"""

from __future__ import annotations

import importlib

_LAZY_NAMES = {
    "PRESETS": "models.presets",
    "PSPNET50_RGB_MEAN": "models.presets",
    "PSPNET50_RGB_STD": "models.presets",
    "EfficientNetLite0": "models.efficientnet_lite",
    "Fusion": "models.fusion",
    "LightTNet": "models.light_tnet",
    "LoadReport": "models.weights",
    "MaxPoolWithArgmax": "models.mnet",
    "MaxUnpool": "models.mnet",
    "MNet": "models.mnet",
    "MobileNetV2": "models.mobilenetv2",
    "Normalize": "models.layers",
    "PSPNet50": "models.pspnet50",
    "Resize": "models.layers",
    "ResizeLike": "models.layers",
    "SemanticHumanMatting": "models.shm",
    "WeightsError": "models.weights",
    "build_light_tnet": "models.light_tnet",
    "build_mnet": "models.mnet",
    "build_pspnet50": "models.pspnet50",
    "build_shm": "models.shm",
    "load_ade20k_weights": "models.weights",
    "load_hed_encoder": "models.weights",
    "load_imagenet_backbone": "models.weights",
    "resolve_preset": "models.shm",
    "tnet_on_rgb": "models.shm",
}

__all__ = sorted(_LAZY_NAMES)


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
