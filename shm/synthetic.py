"""Synthetic matting data: person-like figures with soft alpha, composited on textured backgrounds.

Each sample is a figure (head, neck, torso, two arms, thin hair-like strands whose alpha is soft)
drawn with anti-aliased edges, a textured foreground colour and a textured background, composited
exactly: `image = alpha * fg + (1 - alpha) * bg`. For tests, demos and a check that a model can learn
at all; not a substitute for real photos.

    python -m shm.synthetic --out /tmp/synthetic --n 200 --size 128 --seed 0

writes `OUT/image/00000.png`, `OUT/alpha/00000.png`, `OUT/fg/00000.png` and `OUT/bg/00000.png`, ... (the
layout of `shm.data`). Sample `i` depends only on `(seed, i)`, so a larger `--n` extends a smaller set.
In Python, without files: `synthetic_sample(size=128, seed=(0, 3))`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from shm import io
from shm.console import progress

KINDS = ("image", "alpha", "fg", "bg")
# Drawing happens on an integer grid SUBPIXEL times finer (cv2's `shift`), so edges land between pixels.
SUBPIXEL_BITS = 4
SUBPIXEL = 1 << SUBPIXEL_BITS


@dataclass(frozen=True)
class SyntheticSample:
    """One sample; all float32 in [0, 1] with the same height and width."""

    image: np.ndarray  # (S, S, 3) RGB, = alpha * fg + (1 - alpha) * bg
    alpha: np.ndarray  # (S, S)
    fg: np.ndarray  # (S, S, 3) RGB
    bg: np.ndarray  # (S, S, 3) RGB


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a random `cells` x `cells` grid upsampled bicubically."""
    grid = rng.random((cells, cells, channels)).astype(np.float32)
    smooth = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth, 0.0, 1.0).reshape(size, size, channels)


def _texture(rng: np.random.Generator, size: int, base: np.ndarray, strength: float) -> np.ndarray:
    """`base` colour (3,) varied by smooth noise and sinusoidal stripes of a random direction."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    angle = rng.uniform(0.0, np.pi)
    frequency = rng.uniform(2.0, 14.0)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * (xx * np.cos(angle) + yy * np.sin(angle)))
    noise = _smooth_noise(rng, size, int(rng.integers(3, 9)), 3)
    tint = rng.uniform(-1.0, 1.0, 3).astype(np.float32)
    texture = base + strength * ((noise - 0.5) + 0.5 * (stripes[..., None] - 0.5) * tint)
    return np.clip(texture, 0.0, 1.0).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured background with a few random shapes (edges that are not the figure's)."""
    background = _texture(rng, size, rng.uniform(0.1, 0.9, 3).astype(np.float32), 0.6)
    for _ in range(int(rng.integers(2, 6))):
        colour = tuple(float(c) for c in rng.uniform(0.0, 1.0, 3))
        centre = tuple(int(c) for c in rng.integers(0, size, 2))
        if rng.random() < 0.5:
            axes = tuple(int(a) for a in rng.integers(size // 16 + 1, size // 4 + 2, 2))
            cv2.ellipse(background, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            corner = tuple(int(c) for c in rng.integers(0, size, 2))
            cv2.rectangle(background, centre, corner, colour, -1, cv2.LINE_AA)
    return background


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * SUBPIXEL).astype(np.int32)


def _body_coverage(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict[str, np.ndarray], tuple]:
    """Anti-aliased coverage (S, S) of head, neck, torso and arms; the part masks; the head ellipse."""
    # uint8 canvases: OpenCV anti-aliases only 8-bit images.
    parts = {name: np.zeros((size, size), np.uint8) for name in ("skin", "torso")}
    centre_x = size * rng.uniform(0.35, 0.65)
    head_radius = size * rng.uniform(0.08, 0.13)
    head_y = size * rng.uniform(0.15, 0.3)
    head = ((centre_x, head_y), (head_radius * rng.uniform(0.8, 0.95), head_radius), rng.uniform(-15, 15))
    (hx, hy), (ax, ay), tilt = head
    cv2.ellipse(parts["skin"], tuple(_fixed(np.array([hx, hy]))), tuple(_fixed(np.array([ax, ay]))), tilt, 0, 360,
                255, -1, cv2.LINE_AA, SUBPIXEL_BITS)
    shoulder_y = hy + head_radius * rng.uniform(1.3, 1.6)
    neck = np.array([[hx - 0.35 * ax, hy + 0.5 * ay], [hx + 0.35 * ax, hy + 0.5 * ay],
                     [hx + 0.4 * ax, shoulder_y + 2], [hx - 0.4 * ax, shoulder_y + 2]])
    cv2.fillPoly(parts["skin"], [_fixed(neck)], 255, cv2.LINE_AA, SUBPIXEL_BITS)
    half_shoulders = head_radius * rng.uniform(1.6, 2.3)
    half_waist = half_shoulders * rng.uniform(0.7, 1.0)
    bottom = size * rng.uniform(0.95, 1.1)
    torso = np.array([[centre_x - half_shoulders, shoulder_y], [centre_x + half_shoulders, shoulder_y],
                      [centre_x + half_waist, bottom], [centre_x - half_waist, bottom]])
    cv2.fillPoly(parts["torso"], [_fixed(torso)], 255, cv2.LINE_AA, SUBPIXEL_BITS)
    cv2.ellipse(parts["torso"], tuple(_fixed(np.array([centre_x, shoulder_y + head_radius * 0.3]))),
                tuple(_fixed(np.array([half_shoulders, head_radius * 0.5]))), 0, 180, 360, 255, -1, cv2.LINE_AA,
                SUBPIXEL_BITS)
    arm_width = max(2, int(round(head_radius * rng.uniform(0.45, 0.7))))
    for side in (-1.0, 1.0):
        shoulder = np.array([centre_x + side * half_shoulders * 0.9, shoulder_y + arm_width * 0.6])
        elbow = shoulder + np.array([side * size * rng.uniform(0.02, 0.15), size * rng.uniform(0.15, 0.25)])
        hand = elbow + np.array([side * size * rng.uniform(-0.15, 0.15), size * rng.uniform(0.05, 0.22)])
        cv2.polylines(parts["torso"], [_fixed(np.stack([shoulder, elbow]))], False, 255, arm_width, cv2.LINE_AA,
                      SUBPIXEL_BITS)
        cv2.polylines(parts["skin"], [_fixed(np.stack([elbow, hand]))], False, 255, max(1, arm_width - 1),
                      cv2.LINE_AA, SUBPIXEL_BITS)
        cv2.circle(parts["skin"], tuple(_fixed(hand)), _fixed(np.array(arm_width * 0.7)).item(), 255, -1,
                   cv2.LINE_AA, SUBPIXEL_BITS)
    parts = {name: part.astype(np.float32) / 255.0 for name, part in parts.items()}
    return np.maximum(parts["skin"], parts["torso"]), parts, head


def _hair(rng: np.random.Generator, size: int, head: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Hair: a solid cap over the head plus thin curved strands with partial opacity; (cap, strands)."""
    (hx, hy), (ax, ay), tilt = head
    cap = np.zeros((size, size), np.uint8)
    cv2.ellipse(cap, tuple(_fixed(np.array([hx, hy - 0.15 * ay]))), tuple(_fixed(np.array([ax * 1.08, ay * 0.95]))),
                tilt, 180, 360, 255, -1, cv2.LINE_AA, SUBPIXEL_BITS)
    strands = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(12, 30))):
        angle = rng.uniform(-np.pi, 0.0)  # from the upper half of the head
        point = np.array([hx + ax * np.cos(angle), hy + ay * np.sin(angle)])
        direction = np.array([np.cos(angle), np.sin(angle)])
        step = size * rng.uniform(0.01, 0.025)
        curl = rng.uniform(-0.35, 0.35)
        points = [point]
        for _ in range(int(rng.integers(4, 10))):
            direction = direction @ np.array([[np.cos(curl), np.sin(curl)], [-np.sin(curl), np.cos(curl)]])
            point = point + step * direction
            points.append(point)
        opacity = int(rng.integers(64, 205))
        # Thickness 1 with LINE_AA: a strand thinner than a pixel, so its alpha is fractional.
        cv2.polylines(strands, [_fixed(np.stack(points))], False, opacity, 1, cv2.LINE_AA, SUBPIXEL_BITS)
    return cap.astype(np.float32) / 255.0, strands.astype(np.float32) / 255.0


def synthetic_sample(size: int = 128, seed: int | Sequence[int] = 0) -> SyntheticSample:
    """One synthetic sample of `size` x `size` pixels, fully determined by `seed` (an int or ints)."""
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    rng = np.random.default_rng(seed)
    background = _background(rng, size)
    body, parts, head = _body_coverage(rng, size)
    cap, strands = _hair(rng, size, head)
    skin = _texture(rng, size, rng.uniform([0.45, 0.3, 0.2], [0.95, 0.75, 0.6]).astype(np.float32), 0.15)
    clothes = _texture(rng, size, rng.uniform(0.05, 0.95, 3).astype(np.float32), 0.5)
    hair_colour = _texture(rng, size, rng.uniform(0.02, 0.6) * np.array([1.0, 0.8, 0.6], np.float32), 0.1)
    # Foreground colour everywhere (also outside the figure, as fg estimates are): clothes, then skin and hair
    # painted over where they are drawn.
    foreground = clothes
    foreground = foreground + parts["skin"][..., None] * (skin - foreground)
    hair = np.maximum(cap, strands)
    foreground = foreground + np.minimum(1.0, 3.0 * hair)[..., None] * (hair_colour - foreground)
    alpha = np.clip(np.maximum(body, hair), 0.0, 1.0).astype(np.float32)
    foreground = np.clip(foreground, 0.0, 1.0).astype(np.float32)
    image = alpha[..., None] * foreground + (1.0 - alpha[..., None]) * background
    return SyntheticSample(image=image.astype(np.float32), alpha=alpha, fg=foreground, bg=background)


def write_dataset(out_dir: str | Path, n: int, size: int = 128, seed: int = 0) -> list[Path]:
    """Write `n` samples into `out_dir/{image,alpha,fg,bg}/NNNNN.png`; return the image paths."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out_dir = Path(out_dir)
    width = max(5, len(str(n - 1)))
    written = []
    for index in progress(range(n), desc="synthetic", unit="image"):
        sample = synthetic_sample(size, (seed, index))
        name = f"{index:0{width}d}.png"
        for kind in KINDS:
            io.write_png_atomic(out_dir / kind / name, getattr(sample, kind))
        written.append(out_dir / "image" / name)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shm.synthetic",
        description="Write a synthetic matting data set (OUT/image, OUT/alpha, OUT/fg, OUT/bg; PNG) of person-like "
                    "figures with soft hair strands on textured backgrounds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--n", type=int, default=100, help="number of samples")
    parser.add_argument("--size", type=int, default=128, help="side of the square images in pixels (>= 16)")
    parser.add_argument("--seed", type=int, default=0, help="sample i is drawn from the seed (seed, i)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        written = write_dataset(args.out, args.n, args.size, args.seed)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(f"{len(written)} samples of {args.size}x{args.size} in {args.out} "
          f"({elapsed:.1f} s, {60 * len(written) / max(elapsed, 1e-9):.0f} per minute)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
