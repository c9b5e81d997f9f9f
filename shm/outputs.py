"""What a matte becomes on disk: the output kinds of photos and videos, their pictures, and writing them.

Every pipeline (`shm.jobs` for `inference.py`, `shm.beam`, `evaluate.py`) names and draws its outputs
here: `IMAGE_OUTPUTS` / `VIDEO_OUTPUTS` (suffixes of the input's stem by kind), `output_array` (the
uint8 picture of a kind), `write_image_outputs` (a photo's PNGs, atomically).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
from PIL import ImageColor

from shm.compositing import fit_background
from shm.foreground import composite_uint8
from shm.io import png_bytes, read_image, row_bands, to_uint8, write_png_atomic
from shm.trimap import to_png_values
from shm.video import VIDEO_FORMATS

if TYPE_CHECKING:
    from shm.inference import MatteResult

# The outputs of a photo and of a video by kind (`--outputs`), as suffixes of the input's stem.
IMAGE_OUTPUTS = {"alpha": "_alpha.png", "rgba": "_rgba.png", "composite": "_composite.png",
                 "foreground": "_foreground.png", "trimap": "_trimap.png"}
VIDEO_OUTPUTS = {kind: f"_{kind}{suffix}" for kind, suffix in VIDEO_FORMATS.items()}
OUTPUT_KINDS = tuple(dict.fromkeys([*IMAGE_OUTPUTS, *VIDEO_OUTPUTS]))
# The kinds that need the estimated foreground colours (the rest skip that step).
FOREGROUND_KINDS = {"rgba", "composite", "foreground", "frames"}
# `--input -` / `--output -`: standard input / output.
STANDARD_STREAM = "-"
# A green screen for composites when no --background is given.
DEFAULT_BACKGROUND = np.array([0, 255, 0], np.uint8)


def parse_background(text: str) -> np.ndarray:
    """`--background`: an image file (uint8 RGB (H, W, 3)) or a colour (uint8 (3,)).

    Colours: a CSS name (`green` is CSS's #008000; `lime` is #00ff00), `#rrggbb` or `r,g,b`.
    """
    if Path(text).is_file():
        return read_image(text)
    parts = text.split(",")
    if len(parts) == 3:
        try:
            values = [int(part) for part in parts]
        except ValueError:
            values = []
        if len(values) == 3 and all(0 <= value <= 255 for value in values):
            return np.array(values, np.uint8)
        raise ValueError(f"{text}: not a colour (r,g,b needs three integers in 0..255)")
    try:
        return np.array(ImageColor.getrgb(text)[:3], np.uint8)
    except ValueError:
        raise ValueError(f"{text}: neither an image file nor a colour (a name like green, #00ff00 "
                         "or r,g,b)") from None


def looks_like_output(path: PurePath) -> bool:
    """Named like an output (`*_alpha.png`, ...), or inside a `frames` output folder: an earlier
    result, not an input."""
    files = [suffix for suffix in (*IMAGE_OUTPUTS.values(), *VIDEO_OUTPUTS.values()) if PurePath(suffix).suffix]
    return (any(path.name.endswith(suffix) for suffix in files)
            or path.parent.name.endswith(VIDEO_OUTPUTS["frames"]))


def image_output_suffixes(with_composite: bool, with_trimap: bool) -> dict[str, str]:
    """The suffixes of a photo's default outputs by kind: alpha and rgba, and composite and trimap if asked."""
    kinds = ["alpha", "rgba"] + ["composite"] * with_composite + ["trimap"] * with_trimap
    return {kind: IMAGE_OUTPUTS[kind] for kind in kinds}


def output_array(kind: str, result: MatteResult, image: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """The uint8 picture of one output kind: grey alpha, RGBA cut-out (`rgba`, `frames`),
    composite onto `background`, foreground colours, or the trimap's grey levels."""
    alpha_uint8 = to_uint8(result.alpha)
    if kind == "alpha":
        return alpha_uint8
    if kind == "trimap":
        return to_png_values(result.trimap)
    if kind == "composite":
        background = background if background is not None else DEFAULT_BACKGROUND
        return composite_uint8(result.foreground, result.alpha, fit_background(background, *image.shape[:2]))
    # In bands of rows: no full-size float temporary beside the uint8 result (docs/benchmarks.md, memory).
    channels = 3 if kind == "foreground" else 4
    array = np.empty((*alpha_uint8.shape, channels), np.uint8)
    for rows in row_bands(len(array)):
        array[rows, :, :3] = to_uint8(result.foreground[rows])
    if channels == 4:
        array[..., 3] = alpha_uint8
    return array


def image_output_arrays(result: MatteResult, image: np.ndarray, kinds: Sequence[str],
                        background: np.ndarray | None) -> Iterator[tuple[str, np.ndarray]]:
    """(kind, uint8 array) of each output kind in `kinds` (`output_array`), made as it is asked for."""
    for kind in kinds:
        yield kind, output_array(kind, result, image, background)


def write_image_outputs(result: MatteResult, image: np.ndarray, paths: dict[str, str | os.PathLike],
                        background: np.ndarray | None, overwrite: bool = True,
                        exists: Callable[[str | os.PathLike], bool] = os.path.exists,
                        write: Callable[[str | os.PathLike, np.ndarray], object] = write_png_atomic) -> float:
    """Write the PNGs named in `paths` (existing ones only when `overwrite`; `-` is standard
    output); return seconds spent. `exists` / `write`: the storage (local files by default;
    `shm.beam` passes Beam's filesystems)."""
    start = time.perf_counter()
    kinds = [kind for kind, path in paths.items()
             if str(path) == STANDARD_STREAM or overwrite or not exists(path)]
    for kind, array in image_output_arrays(result, image, kinds, background):
        path = paths[kind]
        if str(path) == STANDARD_STREAM:
            sys.stdout.buffer.write(png_bytes(array))
            sys.stdout.buffer.flush()
            continue
        try:
            write(path, array)
        except OSError as error:
            raise OSError(f"{path}: cannot write ({error.strerror or error})") from None
    return time.perf_counter() - start
