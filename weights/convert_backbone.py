"""Convert a backbone's ImageNet weights (.npz of PyTorch-named arrays) into our Keras layer names.

Examples (each writes the file the light T-Net loads by default for that backbone):
    python weights/convert_backbone.py --backbone mobilenetv2 \\
        --source ../shared/weights/mobilenet_v2_imagenet_torchvision.npz
    python weights/convert_backbone.py --backbone efficientnet_lite0 \\
        --source ../shared/weights/efficientnet_lite0_imagenet.npz
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from models.weights import (IMAGENET_BACKBONES, WeightsError, convert_pytorch_backbone,  # noqa: E402
                            read_npz_arrays)
from shm.io import atomic_path  # noqa: E402


def convert_backbone_file(backbone: str, source: str | os.PathLike,
                          destination: str | os.PathLike | None = None) -> Path:
    """Convert a backbone's PyTorch-named .npz into ours (default destination: the file the
    loader reads), written atomically."""
    source = Path(source)
    destination = Path(destination) if destination is not None else IMAGENET_BACKBONES[backbone].path
    converted = convert_pytorch_backbone(read_npz_arrays(source), backbone, source=str(source))
    with atomic_path(destination) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **dict(sorted(converted.items())))
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", required=True, choices=sorted(IMAGENET_BACKBONES),
                        help="mobilenetv2: torchvision's arrays (features.N..., classifier.1...); "
                             "efficientnet_lite0: efficientnet-lite-pytorch's (_conv_stem, _blocks.N..., _fc)")
    parser.add_argument("--source", required=True, help="the backbone's arrays under their PyTorch names")
    parser.add_argument("--out", help="converted .npz keyed 'layer/variable' (default: the backbone's file the "
                        "loader reads: " + ", ".join(f"{name}: weights/{entry.path.name}"
                                                     for name, entry in sorted(IMAGENET_BACKBONES.items())) + ")")
    args = parser.parse_args(argv)
    try:
        written = convert_backbone_file(args.backbone, args.source, args.out)
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
