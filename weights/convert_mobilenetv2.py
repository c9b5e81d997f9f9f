"""Convert torchvision's ImageNet MobileNetV2 (.npz of PyTorch-named arrays) into our Keras layer names.

Example (writes the file the light T-Net loads by default):
    python weights/convert_mobilenetv2.py --source ../shared/weights/mobilenet_v2_imagenet_torchvision.npz
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from models.weights import (MOBILENETV2_IMAGENET_PATH, WeightsError, convert_torchvision_mobilenetv2,  # noqa: E402
                            read_npz_arrays)
from shm.io import atomic_path  # noqa: E402


def convert_mobilenetv2_file(source: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Convert torchvision's MobileNetV2 .npz (PyTorch names) into ours, written atomically."""
    source, destination = Path(source), Path(destination)
    converted = convert_torchvision_mobilenetv2(read_npz_arrays(source), source=str(source))
    with atomic_path(destination) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **dict(sorted(converted.items())))
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True,
                        help="torchvision MobileNetV2 arrays under their PyTorch names (features.N..., classifier.1...)")
    parser.add_argument("--out", default=str(MOBILENETV2_IMAGENET_PATH),
                        help="converted .npz keyed 'layer/variable' (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        written = convert_mobilenetv2_file(args.source, args.out)
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
