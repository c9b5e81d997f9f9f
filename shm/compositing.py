"""The matting equation `I = alpha F + (1 - alpha) B`: the one definition of compositing.

Plain arithmetic, so the same function serves numpy arrays (inference's cut-outs) and TensorFlow /
Keras tensors (the compositional loss, training's compositing onto new backgrounds); it needs
neither library itself.
"""

from __future__ import annotations


def composite(alpha, foreground, background):
    """`alpha * foreground + (1 - alpha) * background`, elementwise with broadcasting.

    `alpha` (..., 1) or broadcastable to the colours; `foreground` / `background` (..., 3), or one
    colour (3,) for the background; floats in [0, 1].
    """
    # This form (not `B + alpha (F - B)`) keeps opaque and transparent pixels exactly F and B.
    return alpha * foreground + (1.0 - alpha) * background
