"""shm: the library of Semantic Human Matting (data, losses, metrics, training, inference).

`import shm` stays light: names that need Keras (`shm.Matter`) are imported on first use.
"""

from __future__ import annotations

import importlib

_LAZY_NAMES = {"Matter": "shm.inference"}


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'shm' has no attribute {name!r}")
