"""The light T-Net: an ImageNet MobileNetV2 or EfficientNet-Lite0 encoder + a small U-Net decoder -> (B, U, F) softmax.

Input (batch, H, W, 3) RGB float32 in [0, 1], H and W multiples of 32 (or `None` for any such size);
output (batch, H, W, 3) probabilities of Background, Uncertain, Foreground. The ImageNet
normalisation is a `Normalize` layer inside the graph. See docs/light_tnet.md.
"""

from __future__ import annotations

from typing import Sequence

import keras

from models.inverted_residual import InputSize, spatial_shape, with_input_size_tuple
from models.layers import BN_MOMENTUM, Normalize, ResizeLike
from models.weights import IMAGENET_BACKBONES, load_imagenet_backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Both were trained on ImageNet normalised with IMAGENET_MEAN / IMAGENET_STD and give their skip
# features at the same strides; `backbone=` takes these names, those of `models.weights`' registry.
BACKBONES = {name: entry.backbone_class for name, entry in IMAGENET_BACKBONES.items()}
# Every side a multiple of the deepest feature's stride (the backbones' five stride-2 steps).
SIZE_MULTIPLE = 2 ** 5
# The decoder climbs these backbone features, deepest first, one stage per entry of `decoder_widths`.
SKIP_FEATURES = ("stride16", "stride8", "stride4", "stride2")
N_CLASSES = 3


def _separable_conv_bn_relu(x, filters: int, name: str):
    """Depthwise 3x3 + pointwise 1x1, each with BN + ReLU: ~8x cheaper than a dense 3x3 at these widths."""
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_dw_relu")(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_pw_bn")(x)
    return keras.layers.ReLU(name=f"{name}_pw_relu")(x)


@keras.saving.register_keras_serializable(package="shm")
class LightTNet(keras.Model):
    """Backbone + U-Net decoder predicting the 3-class trimap (no weights loaded: see `build_light_tnet`).

    Args:
        input_size: `None` (dynamic), `n` or `(h, w)`; each a multiple of 32.
        decoder_widths: channels of the decoder stages at strides 16, 8, 4, 2.
        backbone_head: keep the backbone's 1x1 conv to 1280 channels as the deepest feature (default:
            the 320-channel output of the last block, the usual cut for segmentation; see docs).
        backbone: `"mobilenetv2"` (torchvision's) or `"efficientnet_lite0"` (`BACKBONES`).
    """

    def __init__(self, input_size: InputSize = None, decoder_widths: Sequence[int] = (96, 64, 32, 16),
                 backbone_head: bool = False, backbone: str = "mobilenetv2", name: str = "light_tnet", **kwargs):
        if backbone not in BACKBONES:
            raise ValueError(f"LightTNet: unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        decoder_widths = tuple(int(width) for width in decoder_widths)
        if len(decoder_widths) != len(SKIP_FEATURES):
            raise ValueError(f"LightTNet: decoder_widths needs {len(SKIP_FEATURES)} widths "
                             f"(strides 16, 8, 4, 2), got {decoder_widths}")
        height, width = spatial_shape(input_size)
        for side in (height, width):
            if side is not None and side % SIZE_MULTIPLE:
                raise ValueError(f"LightTNet: input_size {input_size} is not a multiple of {SIZE_MULTIPLE}")
        image = keras.Input(shape=(height, width, 3), name="image")
        backbone_model = BACKBONES[backbone](input_size=input_size, include_head=backbone_head)
        features = backbone_model(Normalize(IMAGENET_MEAN, IMAGENET_STD, name="imagenet_normalize")(image))
        x = features["stride32"]
        for skip_name, filters in zip(SKIP_FEATURES, decoder_widths):
            stage = f"decoder_{skip_name}"
            # ResizeLike, not UpSampling2D: Keras 3.15's bilinear UpSampling2D fails on dynamic sizes.
            x = ResizeLike(name=f"{stage}_upsample")([x, features[skip_name]])
            x = keras.layers.Concatenate(name=f"{stage}_concat")([x, features[skip_name]])
            x = _separable_conv_bn_relu(x, filters, f"{stage}_conv1")
            x = _separable_conv_bn_relu(x, filters, f"{stage}_conv2")
        x = ResizeLike(name="trimap_upsample")([x, image])
        x = keras.layers.Conv2D(N_CLASSES, 3, padding="same", name="trimap_logits")(x)
        trimap = keras.layers.Softmax(axis=-1, name="trimap")(x)
        super().__init__(inputs=image, outputs=trimap, name=name, **kwargs)
        self.backbone = backbone_model
        self.input_size = backbone_model.input_size
        self.decoder_widths = decoder_widths
        self.backbone_head = backbone_head
        self.backbone_name = backbone

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_size": self.input_size,
            "decoder_widths": list(self.decoder_widths),
            "backbone_head": self.backbone_head,
            "backbone": self.backbone_name,
        }

    @classmethod
    def from_config(cls, config: dict) -> "LightTNet":
        return cls(**with_input_size_tuple(config))


def build_light_tnet(input_size: InputSize = None, decoder_widths: Sequence[int] = (96, 64, 32, 16),
                     backbone_head: bool = False, backbone: str = "mobilenetv2",
                     backbone_weights: str | None = "imagenet", weights_path: str | None = None,
                     name: str = "light_tnet") -> LightTNet:
    """Build the light T-Net; `backbone_weights="imagenet"` loads the backbone's converted ImageNet
    weights (from `weights_path`, default `weights/mobilenet_v2_imagenet.npz` or
    `weights/efficientnet_lite0_imagenet.npz`), `None` leaves them random."""
    if backbone_weights not in ("imagenet", None):
        raise ValueError(f"build_light_tnet: backbone_weights must be 'imagenet' or None, got {backbone_weights!r}")
    model = LightTNet(input_size=input_size, decoder_widths=decoder_widths, backbone_head=backbone_head,
                      backbone=backbone, name=name)
    if backbone_weights == "imagenet":
        load_imagenet_backbone(model, weights_path)
    return model
