"""The PSPNet-50 conformance fixture (tests/fixtures/pspnet50, see its README), its weights rule, and
keras-segmentation's preprocessing that its reference input went through."""

from __future__ import annotations

import json
import pathlib
import zlib

import cv2
import numpy as np

from models.presets import PSPNET50_BGR_MEAN_255

FIXTURE_DIR = pathlib.Path(__file__).parent / "fixtures" / "pspnet50"


def load_layout() -> list[dict]:
    """The 121 weighted layers of `pspnet50_ade20k.h5` in file order: name and (weight name, shape)."""
    return json.loads((FIXTURE_DIR / "layout.json").read_text())["weighted_layers"]


def deterministic_weights(layout: list[dict]) -> dict[str, list[np.ndarray]]:
    """Every layer's weights by the README's rule (seeded by crc32 of "NAME/j"), float32."""
    weights = {}
    for layer in layout:
        name = layer["name"]
        arrays = []
        for j, (_, shape) in enumerate(layer["weights"]):
            z = np.random.default_rng(zlib.crc32(f"{name}/{j}".encode())).standard_normal(shape)
            if name.endswith("_bn"):
                value = [1 + 0.1 * z, 0.1 * z, 0.1 * z, 1 + 0.1 * np.abs(z)][j]
            elif len(shape) == 1:
                value = 0.1 * z
            else:
                value = z / np.sqrt(np.prod(shape[:-1]))
            arrays.append(value.astype(np.float32))
        weights[name] = arrays
    return weights


def preprocess_image(bgr_uint8: np.ndarray, input_size: int = 473) -> np.ndarray:
    """keras-segmentation's `get_image_array(img, S, S, imgNorm="sub_mean")` on a cv2.imread array.

    Bilinear `cv2.resize` to (S, S), subtract the BGR means, reverse the channels to RGB order.
    Returns float32 (S, S, 3).
    """
    image = np.asarray(bgr_uint8)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"preprocess_image expects a uint8 (H, W, 3) BGR array, got {image.dtype} {image.shape}"
        )
    resized = cv2.resize(image, (input_size, input_size)).astype(np.float32)
    resized -= np.asarray(PSPNET50_BGR_MEAN_255, dtype=np.float32)
    return np.ascontiguousarray(resized[:, :, ::-1])
