"""Time per photo of each preset, split into network, upsampling, foreground and writing.

The photo is scikit-image's astronaut resized to 600x800 and to 4000x3000 (12 MP). `lite` runs the
shipped weights; `pspnet50` ships none, so it runs with random weights (the same cost). Prints a
Markdown table (the figures in docs/inference.md):

    python benchmarks/inference_time.py [--presets lite pspnet50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shm.inference import Matter, profile_image  # noqa: E402

SIZES = ((600, 800), (4000, 3000))  # (width, height)


def matter_for(preset: str) -> Matter:
    if preset == "lite":
        return Matter.from_preset("lite")
    from models import build_shm
    from models.presets import PRESETS

    return Matter(build_shm(preset), working_size=PRESETS[preset]["working_size"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["lite", "pspnet50"],
                        help="presets to time (default: lite pspnet50)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs after one warm-up; the fastest is reported (default: 3)")
    args = parser.parse_args(argv)
    from skimage import data

    astronaut = data.astronaut()
    print("| preset | photo | network size | network | upsampling | foreground | writing | total |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for preset in args.presets:
        matter = matter_for(preset)
        for width, height in SIZES:
            photo = cv2.resize(astronaut, (width, height), interpolation=cv2.INTER_LINEAR)
            with tempfile.TemporaryDirectory() as out:
                times = profile_image(matter, photo, out, repeats=args.repeats)
            net_h, net_w = matter.network_size(height, width)
            print(f"| {preset} | {width}x{height} | {net_w}x{net_h} | {times.network:.3f} s | "
                  f"{times.upsampling:.3f} s | {times.foreground:.3f} s | {times.writing:.3f} s | "
                  f"{times.total:.3f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
