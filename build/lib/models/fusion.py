"""The fusion of SHM: the T-Net decides where the matte is certain, the M-Net fills the rest."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="shm")
class Fusion(keras.layers.Layer):
    """`alpha_p = F + U * alpha_r`: `inputs = (trimap_probs, alpha_raw)`, probabilities with the
    last axis (Background, Uncertain, Foreground) and the M-Net's raw alpha (..., 1)."""

    def call(self, inputs):
        trimap_probs, alpha_raw = inputs
        uncertain = trimap_probs[..., 1:2]
        foreground = trimap_probs[..., 2:3]
        return foreground + uncertain * alpha_raw

    def compute_output_shape(self, input_shape):
        return input_shape[1]
