"""The M-Net of Semantic Human Matting: a VGG16-shaped encoder-decoder with max-unpooling.

Encoder: 13 conv 3x3 + BN + ReLU with VGG16's widths and 4 max-pools that remember their argmax;
decoder: 5 conv + BN + ReLU and a final conv + sigmoid (6 convs), with 4 unpooling steps that put
each value back where its encoder max came from (SegNet / Deep Image Matting, not upsampling).

Input: 6 channels, RGB float [0, 1] then the T-Net's (Background, Uncertain, Foreground)
probabilities. The `Normalize` at the top maps the colours to HED's scale (`x * 255 - mean`, RGB
order) so `models.weights.load_hed_encoder` can load HED's VGG16 convs exactly (it reverses the
first kernel's BGR input channels into RGB); the probabilities get the same scale
(`p * 255 - 127.5`) so their zero-initialised weights learn as fast as the colours'.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf
from keras import layers, ops

from models.layers import BN_MOMENTUM, Normalize
from models.presets import VGG16_WIDTHS

# Caffe's VGG16 / HED means on the 0..255 scale, in RGB order (HED lists them as BGR 104.0, 116.7, 122.7).
HED_RGB_MEAN = (122.67892, 116.66877, 104.00699)
# Each of the 4 poolings halves the size, the unpoolings double it back: sides are multiples of 2**4.
SIZE_MULTIPLE = 2 ** 4


def _split_windows(inputs):
    """The 4 positions of each 2x2 window, each (B, H/2, W/2, C), in row-major window order."""
    packed = tf.nn.space_to_depth(inputs, 2)  # channel index = (dy * 2 + dx) * C + c
    return tf.split(packed, 4, axis=-1)


@keras.saving.register_keras_serializable(package="shm")
class MaxPoolWithArgmax(keras.layers.Layer):
    """2x2 / stride 2 max-pool that also returns where each max was, as a one-hot mask.

    Returns `(pooled, mask)`: `pooled` is (B, H/2, W/2, C); `mask` is (B, H/2, W/2, 4C) in
    `space_to_depth` layout, 1 at the first window position (row-major) holding the max, so ties
    (e.g. ReLU zeros) pick exactly one position. Only elementwise ops, space_to_depth and concat:
    differentiable through `pooled` and exportable to TFLite / ONNX (no MaxPoolWithArgmax op).
    """

    def call(self, inputs):
        windows = _split_windows(inputs)
        pooled = ops.maximum(ops.maximum(windows[0], windows[1]), ops.maximum(windows[2], windows[3]))
        taken = ops.zeros_like(pooled, dtype="bool")
        masks = []
        for window in windows:
            is_first_max = ops.logical_and(ops.equal(window, pooled), ops.logical_not(taken))
            taken = ops.logical_or(taken, is_first_max)
            masks.append(ops.cast(is_first_max, inputs.dtype))
        return pooled, ops.concatenate(masks, axis=-1)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        half = lambda size: None if size is None else size // 2  # noqa: E731
        return (batch, half(height), half(width), channels), (batch, half(height), half(width), 4 * channels)


@keras.saving.register_keras_serializable(package="shm")
class MaxUnpool(keras.layers.Layer):
    """Inverse of `MaxPoolWithArgmax`: `inputs = (values, mask)`; each value goes back to the
    position its mask marks in the 2x2 window, zeros elsewhere. Output (B, 2h, 2w, C)."""

    def call(self, inputs):
        values, mask = inputs
        return tf.nn.depth_to_space(ops.tile(values, (1, 1, 1, 4)) * mask, 2)

    def compute_output_shape(self, input_shape):
        (batch, height, width, channels), _ = input_shape
        double = lambda size: None if size is None else size * 2  # noqa: E731
        return (batch, double(height), double(width), channels)


def _conv_bn_relu(x, filters: int, kernel_size: int, name: str, use_bias: bool):
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=use_bias, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def mnet_encoder_conv_names(encoder_widths: Sequence[Sequence[int]] = VGG16_WIDTHS) -> list[str]:
    """Names of the encoder's conv layers in order (`block1_conv1_conv`, ...), as VGG16 numbers them."""
    return [
        f"block{block}_conv{index}_conv"
        for block, widths in enumerate(encoder_widths, start=1)
        for index in range(1, len(widths) + 1)
    ]


@keras.saving.register_keras_serializable(package="shm")
class MNet(keras.Model):
    """The M-Net: (B, H, W, 6) = RGB [0, 1] + (B, U, F) probabilities -> raw alpha (B, H, W, 1) in [0, 1].

    `input_size`: H = W, a multiple of 16, or None for any multiple of 16 at run time.
    `encoder_widths`: 5 blocks of conv widths (VGG16's by default; the `lite` preset slims them);
    a max-pool follows each of the first 4 blocks. The decoder's widths follow from them: the conv
    before each unpooling has the width of the encoder block whose argmax it uses, the last
    hidden conv the width of block 1. `decoder_kernel_size`: 5 as in Deep Image Matting.
    `get_config` is these arguments; the layers (and so the weight files) are those of the
    functional M-Net that `.keras` files saved before this class hold.
    """

    def __init__(self, input_size: int | None = None, encoder_widths: Sequence[Sequence[int]] = VGG16_WIDTHS,
                 decoder_kernel_size: int = 5, name: str = "mnet", **kwargs):
        if input_size is not None and input_size % SIZE_MULTIPLE:
            raise ValueError(f"M-Net input_size must be a multiple of {SIZE_MULTIPLE}, got {input_size}")
        blocks = tuple(tuple(int(w) for w in block) for block in encoder_widths)
        if len(blocks) != 5 or any(not block for block in blocks):
            raise ValueError(f"encoder_widths must be 5 non-empty blocks of conv widths, got {encoder_widths!r}")

        inputs = keras.Input((input_size, input_size, 6), name="image_and_trimap")
        scale = 1.0 / 255.0
        x = Normalize(
            mean=[m / 255.0 for m in HED_RGB_MEAN] + [0.5, 0.5, 0.5], std=[scale] * 6, name="hed_normalize"
        )(inputs)

        masks = []
        for block, widths in enumerate(blocks, start=1):
            for index, width in enumerate(widths, start=1):
                # Encoder convs keep their bias so HED's VGG16 weights load unchanged (BN follows anyway).
                x = _conv_bn_relu(x, width, 3, f"block{block}_conv{index}", use_bias=True)
            if block < 5:
                x, mask = MaxPoolWithArgmax(name=f"block{block}_pool")(x)
                masks.append(mask)

        for stage in range(4, 0, -1):
            x = _conv_bn_relu(x, blocks[stage - 1][-1], decoder_kernel_size, f"decoder{stage + 1}", use_bias=False)
            x = MaxUnpool(name=f"unpool{stage}")([x, masks[stage - 1]])
        x = _conv_bn_relu(x, blocks[0][-1], decoder_kernel_size, "decoder1", use_bias=False)
        alpha_raw = layers.Conv2D(1, decoder_kernel_size, padding="same", activation="sigmoid", name="alpha_raw")(x)
        super().__init__(inputs=inputs, outputs=alpha_raw, name=name, **kwargs)
        self.input_size = input_size
        self.encoder_widths = blocks
        self.decoder_kernel_size = int(decoder_kernel_size)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_size": self.input_size,
            "encoder_widths": [list(block) for block in self.encoder_widths],
            "decoder_kernel_size": self.decoder_kernel_size,
        }

    @classmethod
    def from_config(cls, config: dict) -> "MNet":
        return cls(**config)


def build_mnet(input_size: int | None = None, encoder_widths: Sequence[Sequence[int]] = VGG16_WIDTHS,
               decoder_kernel_size: int = 5, name: str = "mnet") -> MNet:
    """`MNet(...)`: the M-Net with random weights (`models.weights.load_hed_encoder` loads HED's encoder)."""
    return MNet(input_size=input_size, encoder_widths=encoder_widths, decoder_kernel_size=decoder_kernel_size,
                name=name)
