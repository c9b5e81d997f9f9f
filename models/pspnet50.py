"""PSPNet-50, weight-for-weight equal to keras-segmentation 0.3.0's `pspnet_50`.

The network whose weights the public ADE20K file `pspnet50_ade20k.h5` holds (load them with
`models.weights.load_ade20k_weights`). Layer names, weight shapes and the order of the weighted
layers are those of that file, so a Keras 2 h5 maps onto it layer by layer. See docs/pspnet50.md.

Its input is keras-segmentation's preprocessed image (RGB order, the BGR means of
`models.presets.PSPNET50_BGR_MEAN_255` subtracted from pixels in [0, 255]); inside the SHM model a
`Normalize(PSPNET50_RGB_MEAN, PSPNET50_RGB_STD)` makes it from RGB in [0, 1].

Example:
    model = build_pspnet50(n_classes=3)
    probs = model.predict(preprocessed)  # (1, 473, 473, 3)
"""

from __future__ import annotations

import math

import keras

from models.layers import ResizeLike

PYRAMID_BINS = (1, 2, 3, 6)
# keras-segmentation concatenates the pyramid branches in this order after the ResNet features.
_CONCAT_BIN_ORDER = (6, 3, 2, 1)
# (stage, blocks, width multiplier, dilation); stage 3 halves the resolution in its first block.
_RESNET50_STAGES = ((2, 3, 1, 1), (3, 4, 2, 1), (4, 6, 4, 2), (5, 3, 8, 4))


def feature_map_size(input_size: int) -> int:
    """Side of the ResNet output map: three 'same'-padded stride-2 steps, ceil(input / 8)."""
    return math.ceil(input_size / 8)


def _batch_norm(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=0.95, epsilon=1e-5, name=name)


def _conv(filters: int, kernel: int, name: str, **kwargs) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, use_bias=False, name=name, **kwargs)


def _bottleneck(x, stage: int, block: int, width: int, dilation: int, stride: int, project: bool):
    """One bottleneck; like the Caffe original, the ReLU of the previous block opens it."""
    prefix = f"conv{stage}_{block}"
    x = keras.layers.ReLU()(x)
    y = _conv(64 * width, 1, f"{prefix}_1x1_reduce", strides=stride)(x)
    y = _batch_norm(f"{prefix}_1x1_reduce_bn")(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.ZeroPadding2D(dilation)(y)
    y = _conv(64 * width, 3, f"{prefix}_3x3", dilation_rate=dilation)(y)
    y = _batch_norm(f"{prefix}_3x3_bn")(y)
    y = keras.layers.ReLU()(y)
    y = _conv(256 * width, 1, f"{prefix}_1x1_increase")(y)
    y = _batch_norm(f"{prefix}_1x1_increase_bn")(y)
    if project:
        x = _conv(256 * width, 1, f"{prefix}_1x1_proj", strides=stride)(x)
        x = _batch_norm(f"{prefix}_1x1_proj_bn")(x)
    return keras.layers.Add()([y, x])


def _dilated_resnet50(image):
    """Deep-stem, bias-free ResNet-50 with output stride 8 (dilation 2 and 4 in stages 4 and 5)."""
    x = image
    for name, filters, stride in (
        ("conv1_1_3x3_s2", 64, 2),
        ("conv1_2_3x3", 64, 1),
        ("conv1_3_3x3", 128, 1),
    ):
        x = _conv(filters, 3, name, strides=stride, padding="same")(x)
        x = _batch_norm(f"{name}_bn")(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for stage, blocks, width, dilation in _RESNET50_STAGES:
        for block in range(1, blocks + 1):
            stride = 2 if (stage == 3 and block == 1) else 1
            x = _bottleneck(x, stage, block, width, dilation, stride, project=block == 1)
    return keras.layers.ReLU()(x)


def _pyramid_branch(features, bins: int, map_size: int):
    pool = map_size // bins
    x = keras.layers.AveragePooling2D(pool, strides=pool)(features)
    x = _conv(512, 1, f"conv5_3_pool{bins}_conv")(x)
    x = _batch_norm(f"conv5_3_pool{bins}_conv_bn")(x)
    x = keras.layers.ReLU()(x)
    return ResizeLike()([x, features])


@keras.saving.register_keras_serializable(package="shm")
class PSPNet50(keras.Model):
    """keras-segmentation's `pspnet_50` as a functional model.

    Input: (batch, S, S, 3) preprocessed as keras-segmentation does (RGB order, means subtracted,
    range about [-124, 152]). Output: (batch, S, S, n_classes) softmax probabilities.
    S must give a ResNet map (ceil(S / 8)) divisible by 6, so that every pyramid level pools
    exactly: 473 (map 60, pools 60/30/20/10) and 713 (map 90) as in keras-segmentation.
    """

    def __init__(self, n_classes: int = 3, input_size: int = 473, **kwargs):
        map_size = feature_map_size(input_size)
        if map_size % 6:
            raise ValueError(
                f"PSPNet50 input_size={input_size} gives a {map_size}x{map_size} feature map, "
                "which the 1/2/3/6-bin pyramid cannot pool exactly; use a size whose "
                "ceil(size / 8) is a multiple of 6, e.g. 473 or 713"
            )
        kwargs.setdefault("name", "pspnet50")
        image = keras.Input((input_size, input_size, 3), name="image")
        features = _dilated_resnet50(image)
        branches = {bins: _pyramid_branch(features, bins, map_size) for bins in PYRAMID_BINS}
        x = keras.layers.Concatenate()([features] + [branches[b] for b in _CONCAT_BIN_ORDER])
        x = _conv(512, 3, "conv5_4", padding="same")(x)
        x = _batch_norm("conv5_4_bn")(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Dropout(0.1)(x)
        x = keras.layers.Conv2D(n_classes, 1, name="conv6")(x)
        x = ResizeLike()([x, image])
        probs = keras.layers.Softmax(name="probs")(x)
        super().__init__(inputs=image, outputs=probs, **kwargs)
        self.n_classes = n_classes
        self.input_size = input_size

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "n_classes": self.n_classes,
            "input_size": self.input_size,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_pspnet50(n_classes: int = 3, input_size: int = 473) -> PSPNet50:
    """The PSPNet-50 T-Net: keras-segmentation's preprocessed input in, softmax probabilities out."""
    return PSPNet50(n_classes=n_classes, input_size=input_size)
