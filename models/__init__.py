"""Networks of Semantic Human Matting: T-Nets, M-Net, fusion, the SHM model, weights, presets."""

from models.fusion import Fusion
from models.layers import Normalize, Resize, ResizeLike
from models.light_tnet import LightTNet, build_light_tnet
from models.mnet import MaxPoolWithArgmax, MaxUnpool, build_mnet
from models.mobilenetv2 import MobileNetV2
from models.presets import PRESETS
from models.pspnet50 import PSPNET50_RGB_MEAN, PSPNET50_RGB_STD, PSPNet50, build_pspnet50, preprocess_image
from models.shm import SemanticHumanMatting, build_shm, resolve_preset
from models.weights import (
    LoadReport,
    WeightsError,
    convert_mobilenetv2_file,
    load_ade20k_weights,
    load_hed_encoder,
    load_mobilenetv2_imagenet,
)

__all__ = [
    "PRESETS",
    "PSPNET50_RGB_MEAN",
    "PSPNET50_RGB_STD",
    "Fusion",
    "LightTNet",
    "LoadReport",
    "MaxPoolWithArgmax",
    "MaxUnpool",
    "MobileNetV2",
    "Normalize",
    "PSPNet50",
    "Resize",
    "ResizeLike",
    "SemanticHumanMatting",
    "WeightsError",
    "build_light_tnet",
    "build_mnet",
    "build_pspnet50",
    "build_shm",
    "convert_mobilenetv2_file",
    "load_ade20k_weights",
    "load_hed_encoder",
    "load_mobilenetv2_imagenet",
    "preprocess_image",
    "resolve_preset",
]
