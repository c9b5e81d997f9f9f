"""EfficientNet-Lite0 as the PyTorch reference builds it: a light T-Net backbone able to hold its
ImageNet weights (about 75 % top-1 against MobileNetV2's 72 %, at a similar cost).

EfficientNet-Lite is EfficientNet-B0 made for mobile runtimes: no squeeze-excitation, ReLU6 instead
of swish, the stem and head kept at 32 and 1280 channels. So its blocks are MobileNetV2's inverted
residuals with 3x3 or 5x5 depthwise kernels (`models.inverted_residual`). The reference
(`efficientnet-lite-pytorch` 0.1.0, lukemelas' EfficientNet-PyTorch) pads like TensorFlow's "same"
(the odd pixel of a stride-2 conv at the bottom/right), which is Keras' `padding="same"`, and its
BatchNorm epsilon is 1e-3. Block `i` here is `_blocks.i` there (0..15); `stem_*` is `_conv_stem` /
`_bn0`, `head_*` is `_conv_head` / `_bn1`, `classifier` is `_fc`.

Input: NHWC float32 normalised with the ImageNet mean/std. Output: a dict of feature maps
`stride2` ... `stride32` (+ `logits` with `include_top=True`).
"""

from __future__ import annotations

import keras

from models.inverted_residual import BlockSpec, InvertedResidualBackbone, block_specs_from_table

# EfficientNet-B0's stages at width and depth 1.0: (expansion, output channels, repeats, first stride, kernel).
MBCONV_SETTINGS = (
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 40, 2, 2, 5),
    (6, 80, 3, 2, 3),
    (6, 112, 3, 1, 5),
    (6, 192, 4, 2, 5),
    (6, 320, 1, 1, 3),
)


@keras.saving.register_keras_serializable(package="shm")
class EfficientNetLite0(InvertedResidualBackbone):
    """EfficientNet-Lite0 returning a dict of multi-scale features.

    Args: see `InvertedResidualBackbone` (`include_head`: `_conv_head`, 320 -> 1280).
    """

    BN_EPSILON = 1e-3
    SYMMETRIC_STRIDE2_PADDING = False
    # The last block of each resolution (`_blocks.N` indices).
    FEATURE_BLOCKS = {"stride2": 0, "stride4": 2, "stride8": 4, "stride16": 10, "stride32": 15}
    DEFAULT_NAME = "efficientnet_lite0"

    @classmethod
    def block_specs(cls) -> list[BlockSpec]:
        """The 16 MBConv blocks in order, numbered like the reference's `_blocks` (0..15)."""
        return block_specs_from_table(MBCONV_SETTINGS, cls.STEM_CHANNELS, first_index=0)
