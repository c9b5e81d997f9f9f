"""The PSPNet-50 conformance fixture (tests/fixtures/pspnet50, see its README) and its weights rule."""

from __future__ import annotations

import json
import pathlib
import zlib

import numpy as np

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
