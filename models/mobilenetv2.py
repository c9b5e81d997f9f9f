"""Torchvision-exact MobileNetV2: a light T-Net backbone, able to hold torchvision's ImageNet weights.

It differs from `keras.applications.MobileNetV2` where torchvision does: every 3x3 convolution pads
1 pixel on ALL sides, stride 2 included (keras.applications pads only bottom/right there, which
shifts every stride-2 output by half a pixel and breaks the transferred weights), and BatchNorm
epsilon is 1e-5. Layers are named after torchvision's `features.N`: block `i` here is
`features.i` there (stem = `features.0`, head 1x1 conv = `features.18`).

Input: NHWC float32 already normalised with the ImageNet mean/std (the T-Net does it in its graph).
Output: a dict of feature maps `stride2`, `stride4`, `stride8`, `stride16`, `stride32` (+ `logits`
with `include_top=True`); see `models.inverted_residual.InvertedResidualBackbone`.
"""

from __future__ import annotations

import keras

from models.inverted_residual import BlockSpec, InvertedResidualBackbone, block_specs_from_table

# torchvision's inverted-residual table: (expansion t, output channels c, repeats n, first stride s, kernel).
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 32, 3, 2, 3),
    (6, 64, 4, 2, 3),
    (6, 96, 3, 1, 3),
    (6, 160, 3, 2, 3),
    (6, 320, 1, 1, 3),
)


def block_specs() -> list[BlockSpec]:
    """The 17 inverted residual blocks in order, numbered like torchvision's `features` (1..17)."""
    return block_specs_from_table(INVERTED_RESIDUAL_SETTINGS, MobileNetV2.STEM_CHANNELS, first_index=1)


@keras.saving.register_keras_serializable(package="shm")
class MobileNetV2(InvertedResidualBackbone):
    """Torchvision-exact MobileNetV2 returning a dict of multi-scale features.

    Args: see `InvertedResidualBackbone` (`include_head`: torchvision's `features.18`, 320 -> 1280).
    """

    BN_EPSILON = 1e-5
    SYMMETRIC_STRIDE2_PADDING = True
    # The last block of each resolution (torchvision `features.N` indices).
    FEATURE_BLOCKS = {"stride2": 1, "stride4": 3, "stride8": 6, "stride16": 13, "stride32": 17}
    DEFAULT_NAME = "mobilenetv2"

    @classmethod
    def block_specs(cls) -> list[BlockSpec]:
        return block_specs()
