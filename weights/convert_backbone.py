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

from models.weights import IMAGENET_BACKBONES, WeightsError, convert_backbone_file  # noqa: E402


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
