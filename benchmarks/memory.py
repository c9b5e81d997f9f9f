"""Peak memory of `inference.py` per photo pixel: how memory grows with the photo's size.

Each photo (scikit-image's astronaut enlarged to W x H, written as PNG) is matted by
`python inference.py --input PHOTO --output DIR --background lime --threads 1` in a child process
of its own, on the shipped model (ONNX, no TensorFlow); the child's peak resident memory comes from
`os.wait4`. Bytes per pixel = (peak - peak of a 640x480 photo) / pixels: the cost of the photo
itself, without the interpreter, the runtime and the model. Sizes must be under the default pixel
cap of the checkout measured (`shm.io.MAX_PIXELS`).

Example:
    python benchmarks/memory.py                                   # 640x480, 4000x3000, 8000x6000
    python benchmarks/memory.py --sizes 640x480 8000x6000 --repo /tmp/old_checkout
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance import astronaut_photo, photo_size, run_child  # noqa: E402
from report import ROOT  # noqa: E402

BASELINE_SIZE = (640, 480)


def peak_mb(repo: Path, photo: Path, output: Path) -> float:
    """Peak resident MB of one `inference.py` run of `repo` on `photo`."""
    run = run_child([sys.executable, str(repo / "inference.py"), "--input", str(photo), "--output", str(output),
                     "--background", "lime", "--threads", "1", "--overwrite"])
    if run.exit_code != 0:
        raise RuntimeError(f"{photo.name}: inference.py failed ({run.last_error_line()})")
    return run.peak_rss_mb


def measure(repo: Path, sizes: list[tuple[int, int]]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        baseline = None
        for width, height in [BASELINE_SIZE, *sizes]:
            photo = Path(folder) / f"photo_{width}x{height}.png"
            cv2.imwrite(str(photo), cv2.cvtColor(astronaut_photo(width, height), cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_PNG_COMPRESSION, 1])
            peak = peak_mb(repo, photo, Path(folder) / "out")
            photo.unlink()
            if baseline is None:
                baseline = peak
                continue
            pixels = width * height
            rows.append({"photo": f"{width}x{height}", "megapixels": pixels / 1e6, "peak_mb": peak,
                         "bytes_per_pixel": (peak - baseline) * 2**20 / pixels})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=photo_size, nargs="+", default=[(4000, 3000), (8000, 6000)],
                        metavar="WxH", help="photo sizes, width x height (default: 4000x3000 8000x6000)")
    parser.add_argument("--repo", type=Path, default=ROOT,
                        help="the checkout whose inference.py runs, e.g. an older version to compare "
                             "(default: this one)")
    args = parser.parse_args(argv)
    print("| photo | MP | peak RSS (MB) | bytes per pixel |\n| --- | ---: | ---: | ---: |")
    for row in measure(args.repo, args.sizes):
        print(f"| {row['photo']} | {row['megapixels']:.0f} | {row['peak_mb']:.0f} | {row['bytes_per_pixel']:.0f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
