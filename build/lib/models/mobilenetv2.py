"""Torchvision-exact MobileNetV2: the light T-Net's backbone, able to hold torchvision's ImageNet weights.

It differs from `keras.applications.MobileNetV2` where torchvision does: every 3x3 convolution pads
1 pixel on ALL sides, stride 2 included (keras.applications pads only bottom/right there, which
shifts every stride-2 output by half a pixel and breaks the transferred weights), and BatchNorm
epsilon is 1e-5. Layers are named after torchvision's `features.N`: block `i` here is
`features.i` there (stem = `features.0`, head 1x1 conv = `features.18`).

Input: NHWC float32 already normalised with the ImageNet mean/std (the T-Net does it in its graph).
Output: a dict of feature maps `stride2`, `stride4`, `stride8`, `stride16`, `stride32` (+ `logits`
with `include_top=True`).
"""

from __future__ import annotations

import dataclasses

import keras

from models.layers import BN_MOMENTUM

# torchvision's inverted-residual table: (expansion t, output channels c, repeats n, first stride s).
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-5
CLASSIFIER_DROPOUT = 0.2
# The last block of each resolution (torchvision `features.N` indices); stride32 is the head's output
# when the head is kept, else block 17's.
FEATURE_BLOCKS = {"stride2": 1, "stride4": 3, "stride8": 6, "stride16": 13, "stride32": 17}

InputSize = int | tuple[int, int] | None


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One inverted residual block; `index` is its torchvision `features.index`."""

    index: int
    expansion: int
    in_channels: int
    out_channels: int
    stride: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def block_specs() -> list[BlockSpec]:
    """The 17 inverted residual blocks in order, numbered like torchvision's `features`."""
    specs = []
    in_channels = STEM_CHANNELS
    for expansion, out_channels, repeats, first_stride in INVERTED_RESIDUAL_SETTINGS:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            specs.append(BlockSpec(len(specs) + 1, expansion, in_channels, out_channels, stride))
            in_channels = out_channels
    return specs


def spatial_shape(input_size: InputSize) -> tuple[int | None, int | None]:
    """`None`, `n` or `(h, w)` as an (h, w) pair (None = dynamic)."""
    if input_size is None:
        return None, None
    if isinstance(input_size, int):
        return input_size, input_size
    height, width = input_size
    return height, width


def _padded_conv(x, conv: keras.layers.Layer, stride: int, name: str):
    """Torchvision pads 1 on every side; 'same' does exactly that at stride 1 but not at stride 2."""
    if stride == 2:
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return conv(x)


def _conv_bn_relu6(x, filters: int, kernel_size: int, stride: int, name: str):
    padding = "same" if stride == 1 else "valid"
    conv = keras.layers.Conv2D(filters, kernel_size, strides=stride, padding=padding, use_bias=False,
                               name=f"{name}_conv")
    x = _padded_conv(x, conv, stride, name)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(max_value=6.0, name=f"{name}_relu")(x)


def _inverted_residual(x, spec: BlockSpec):
    name = f"block{spec.index}"
    shortcut = x
    if spec.expansion != 1:
        x = _conv_bn_relu6(x, spec.in_channels * spec.expansion, 1, 1, f"{name}_expand")
    padding = "same" if spec.stride == 1 else "valid"
    depthwise = keras.layers.DepthwiseConv2D(3, strides=spec.stride, padding=padding, use_bias=False,
                                             name=f"{name}_dwconv")
    x = _padded_conv(x, depthwise, spec.stride, name)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(max_value=6.0, name=f"{name}_dw_relu")(x)
    x = keras.layers.Conv2D(spec.out_channels, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_project_bn")(x)
    if spec.residual:
        x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return x


@keras.saving.register_keras_serializable(package="shm")
class MobileNetV2(keras.Model):
    """Torchvision-exact MobileNetV2 returning a dict of multi-scale features.

    Args:
        input_size: spatial size of the (already normalised) input: `None` (dynamic), `n` or `(h, w)`.
        include_head: keep torchvision's last 1x1 conv to 1280 channels (`features.18`); without it
            `stride32` is the 320-channel output of the last block.
        include_top: add global average pooling, dropout and the 1000-class classifier (`logits`);
            needs `include_head`.
    """

    def __init__(self, input_size: InputSize = None, include_head: bool = True, include_top: bool = False,
                 name: str = "mobilenetv2", **kwargs):
        if include_top and not include_head:
            raise ValueError("MobileNetV2: include_top=True needs include_head=True (the classifier reads 1280 channels)")
        height, width = spatial_shape(input_size)
        inputs = keras.Input(shape=(height, width, 3), name="normalized_image")
        x = _conv_bn_relu6(inputs, STEM_CHANNELS, 3, 2, "stem")
        features = {}
        feature_of_block = {index: key for key, index in FEATURE_BLOCKS.items()}
        for spec in block_specs():
            x = _inverted_residual(x, spec)
            if spec.index in feature_of_block:
                features[feature_of_block[spec.index]] = x
        if include_head:
            x = _conv_bn_relu6(x, HEAD_CHANNELS, 1, 1, "head")
            features["stride32"] = x
        if include_top:
            pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
            pooled = keras.layers.Dropout(CLASSIFIER_DROPOUT, name="classifier_dropout")(pooled)
            features["logits"] = keras.layers.Dense(1000, name="classifier")(pooled)
        super().__init__(inputs=inputs, outputs=features, name=name, **kwargs)
        self.input_size = input_size if input_size is None or isinstance(input_size, int) else (height, width)
        self.include_head = include_head
        self.include_top = include_top

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_size": self.input_size,
            "include_head": self.include_head,
            "include_top": self.include_top,
        }

    @classmethod
    def from_config(cls, config: dict) -> "MobileNetV2":
        config = dict(config)
        if isinstance(config.get("input_size"), list):
            config["input_size"] = tuple(config["input_size"])
        return cls(**config)
