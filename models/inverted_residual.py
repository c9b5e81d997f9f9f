"""Inverted-residual (MBConv) backbones returning multi-scale features: what MobileNetV2 and
EfficientNet-Lite0 share.

Both are a stem conv 3x3/2 + BN + ReLU6, a stack of inverted residual blocks ([1x1 expand + BN +
ReLU6] -> depthwise kxk + BN + ReLU6 -> 1x1 project + BN, identity skip when stride 1 and
in == out), a 1x1 head conv to 1280 + BN + ReLU6 and a pooled classifier. They differ in the block
table, the BatchNorm epsilon and the padding of stride-2 convolutions, which a subclass fixes as
class attributes (`models/mobilenetv2.py`, `models/efficientnet_lite.py`).

Layer names: `stem_conv`/`stem_bn`, `block{i}_expand_conv`/`_expand_bn`, `block{i}_dwconv`/`_dw_bn`,
`block{i}_project_conv`/`_project_bn`, `head_conv`/`head_bn`, `classifier`, with `i` the block's index
in the source network, so converted weights load by name (`models.weights.load_imagenet_backbone`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import keras

from models.layers import BN_MOMENTUM

InputSize = int | tuple[int, int] | None
FEATURE_STRIDES = ("stride2", "stride4", "stride8", "stride16", "stride32")


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One inverted residual block; `index` is its index in the source network's block list."""

    index: int
    expansion: int
    in_channels: int
    out_channels: int
    stride: int
    kernel_size: int = 3

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def block_specs_from_table(table: tuple[tuple[int, ...], ...], stem_channels: int,
                           first_index: int) -> list[BlockSpec]:
    """Blocks of a stage table of (expansion, out channels, repeats, first stride, kernel size) rows,
    numbered from `first_index`; only the first repeat of a stage has its stride."""
    specs = []
    in_channels = stem_channels
    for expansion, out_channels, repeats, first_stride, kernel_size in table:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            specs.append(BlockSpec(first_index + len(specs), expansion, in_channels, out_channels, stride,
                                   kernel_size))
            in_channels = out_channels
    return specs


def with_input_size_tuple(config: dict) -> dict:
    """A network's saved config as its constructor takes it: an (H, W) `input_size`, which JSON
    stored as a list, back as a tuple."""
    config = dict(config)
    if isinstance(config.get("input_size"), list):
        config["input_size"] = tuple(config["input_size"])
    return config


def spatial_shape(input_size: InputSize) -> tuple[int | None, int | None]:
    """`None`, `n` or `(h, w)` as an (h, w) pair (None = dynamic)."""
    if input_size is None:
        return None, None
    if isinstance(input_size, int):
        return input_size, input_size
    height, width = input_size
    return height, width


class InvertedResidualBackbone(keras.Model):
    """A dict of feature maps `stride2` ... `stride32` (+ `logits` with `include_top=True`).

    Subclasses set the class attributes below. Input: NHWC float32 already normalised as the
    source network's ImageNet training did.

    Args:
        input_size: spatial size of the input: `None` (dynamic), `n` or `(h, w)`.
        include_head: keep the last 1x1 conv to 1280 channels; without it `stride32` is the output
            of the last block.
        include_top: add global average pooling, dropout and the 1000-class classifier (`logits`);
            needs `include_head`.
    """

    STEM_CHANNELS: ClassVar[int] = 32
    HEAD_CHANNELS: ClassVar[int] = 1280
    BN_EPSILON: ClassVar[float]
    # True: a stride-2 kxk conv pads k // 2 on every side (torchvision's convs); False: TensorFlow's
    # "same" (Keras' too), the odd pixel at the bottom/right.
    SYMMETRIC_STRIDE2_PADDING: ClassVar[bool]
    CLASSIFIER_DROPOUT: ClassVar[float] = 0.2
    # The block whose output is each feature; stride32 is the head's output when the head is kept.
    FEATURE_BLOCKS: ClassVar[dict[str, int]]
    DEFAULT_NAME: ClassVar[str]

    @classmethod
    def block_specs(cls) -> list[BlockSpec]:
        raise NotImplementedError(f"{cls.__name__} does not define its blocks")

    def __init__(self, input_size: InputSize = None, include_head: bool = True, include_top: bool = False,
                 name: str | None = None, **kwargs):
        kind = type(self).__name__
        if include_top and not include_head:
            raise ValueError(f"{kind}: include_top=True needs include_head=True "
                             f"(the classifier reads {self.HEAD_CHANNELS} channels)")
        height, width = spatial_shape(input_size)
        inputs = keras.Input(shape=(height, width, 3), name="normalized_image")
        x = self._conv_bn_relu6(inputs, self.STEM_CHANNELS, 3, 2, "stem")
        features = {}
        feature_of_block = {index: key for key, index in self.FEATURE_BLOCKS.items()}
        for spec in self.block_specs():
            x = self._inverted_residual(x, spec)
            if spec.index in feature_of_block:
                features[feature_of_block[spec.index]] = x
        if include_head:
            x = self._conv_bn_relu6(x, self.HEAD_CHANNELS, 1, 1, "head")
            features["stride32"] = x
        if include_top:
            pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
            pooled = keras.layers.Dropout(self.CLASSIFIER_DROPOUT, name="classifier_dropout")(pooled)
            features["logits"] = keras.layers.Dense(1000, name="classifier")(pooled)
        super().__init__(inputs=inputs, outputs=features, name=name or self.DEFAULT_NAME, **kwargs)
        self.input_size = input_size if input_size is None or isinstance(input_size, int) else (height, width)
        self.include_head = include_head
        self.include_top = include_top

    def _conv(self, x, conv_class, kernel_size: int, stride: int, prefix: str, **conv_kwargs):
        if stride == 2 and self.SYMMETRIC_STRIDE2_PADDING:
            x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{prefix}_pad")(x)
            padding = "valid"
        else:
            padding = "same"  # at stride 1 (odd kernels) exactly k // 2 on every side
        return conv_class(kernel_size=kernel_size, strides=stride, padding=padding, use_bias=False,
                          **conv_kwargs)(x)

    def _batch_norm(self, x, name: str):
        return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=self.BN_EPSILON, name=name)(x)

    def _conv_bn_relu6(self, x, filters: int, kernel_size: int, stride: int, name: str):
        x = self._conv(x, keras.layers.Conv2D, kernel_size, stride, name, filters=filters, name=f"{name}_conv")
        x = self._batch_norm(x, f"{name}_bn")
        return keras.layers.ReLU(max_value=6.0, name=f"{name}_relu")(x)

    def _inverted_residual(self, x, spec: BlockSpec):
        name = f"block{spec.index}"
        shortcut = x
        if spec.expansion != 1:
            x = self._conv_bn_relu6(x, spec.in_channels * spec.expansion, 1, 1, f"{name}_expand")
        x = self._conv(x, keras.layers.DepthwiseConv2D, spec.kernel_size, spec.stride, name, name=f"{name}_dwconv")
        x = self._batch_norm(x, f"{name}_dw_bn")
        x = keras.layers.ReLU(max_value=6.0, name=f"{name}_dw_relu")(x)
        x = keras.layers.Conv2D(spec.out_channels, 1, use_bias=False, name=f"{name}_project_conv")(x)
        x = self._batch_norm(x, f"{name}_project_bn")
        if spec.residual:
            x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
        return x

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_size": self.input_size,
            "include_head": self.include_head,
            "include_top": self.include_top,
        }

    @classmethod
    def from_config(cls, config: dict) -> "InvertedResidualBackbone":
        return cls(**with_input_size_tuple(config))
