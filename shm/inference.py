"""Matting photos, folders, videos and webcam frames with a trained SHM model.

The network runs at its working size; the alpha comes back to the photo's own resolution through
the Fast Guided Filter (`shm.upsampling`), and the cut-out gets estimated foreground colours
(`shm.foreground`), so a 12 MP photo costs one small network pass plus a few full-size filters.

The network is any format `shm.backends` runs (Keras, SavedModel, TFLite, ONNX); TFLite and
ONNX need neither TensorFlow nor Keras.

Example:
    from shm import Matter
    matter = Matter.from_preset("lite")                # weights/shm_lite.keras
    matter = Matter.from_weights("exports/shm_lite.tflite")   # an export of export.py
    alpha = matter.predict(rgb_uint8)                  # float32 (H, W) in [0, 1]
    result = matter.matte(rgb_uint8, trimap=True)      # .alpha, .foreground, .trimap, .times
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import cv2
import numpy as np
from PIL import ImageColor

from shm.backends import ModelFileError, Runner, load_backend
from shm.batch import Interrupted, run_per_file
from shm.console import progress, report
from shm.foreground import composite, estimate_foreground
from shm.geometry import DEFAULT_SIZE_MULTIPLE, network_size
from shm.io import (IMAGE_EXTENSIONS, TRIMAP_PNG_VALUES, atomic_folder, atomic_path, png_bytes, read_image,
                    row_bands, to_uint8, write_png_atomic)
from shm.upsampling import RowUpsampler, guided_upsample, resize
from shm.video import VIDEO_FORMATS, FrameSource, VideoError, VideoWriter

if TYPE_CHECKING:
    import keras

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the source tree (shm.beam puts it on its workers' path)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
# The outputs of a photo and of a video by kind (`--outputs`), as suffixes of the input's stem.
IMAGE_OUTPUTS = {"alpha": "_alpha.png", "rgba": "_rgba.png", "composite": "_composite.png",
                 "foreground": "_foreground.png", "trimap": "_trimap.png"}
VIDEO_OUTPUTS = {kind: f"_{kind}{suffix}" for kind, suffix in VIDEO_FORMATS.items()}
OUTPUT_KINDS = tuple(dict.fromkeys([*IMAGE_OUTPUTS, *VIDEO_OUTPUTS]))
# The kinds that need the estimated foreground colours (the rest skip that step).
FOREGROUND_KINDS = {"rgba", "composite", "foreground", "frames"}
# `--input -` / `--output -`: standard input / output.
STANDARD_STREAM = "-"
# Dynamic-size models get sides that are multiples of every preset's size multiple (shm.geometry).
SIZE_MULTIPLE = DEFAULT_SIZE_MULTIPLE
# A green screen for composites when no --background is given.
DEFAULT_BACKGROUND = np.array([0, 255, 0], np.uint8)
TRAINING_HINT = ("train one with `python pretrain_tnet.py train_tnet`, `python pretrain_mnet.py` and "
                 "`python combined_model.py` (see docs/training.md), or give another file with --weights")
TRIMAP_GREY_LEVELS = np.array(TRIMAP_PNG_VALUES, np.uint8)


@dataclasses.dataclass
class StageTimes:
    """Seconds spent in each stage of matting one image (or a sum over many)."""

    network: float = 0.0
    upsampling: float = 0.0
    foreground: float = 0.0
    writing: float = 0.0

    def __add__(self, other: "StageTimes") -> "StageTimes":
        return StageTimes(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    @property
    def total(self) -> float:
        return sum(dataclasses.astuple(self))

    def describe(self, count: int = 1) -> str:
        """`"0.52 s (network 0.20, upsampling 0.10, foreground 0.15, writing 0.07)"` per item."""
        n = max(count, 1)
        parts = ", ".join(f"{field.name} {getattr(self, field.name) / n:.3f}"
                          for field in dataclasses.fields(self))
        return f"{self.total / n:.3f} s ({parts})"


@dataclasses.dataclass
class MatteResult:
    """What `Matter.matte` returns, all at the input image's resolution."""

    alpha: np.ndarray                     # float32 (H, W) in [0, 1]
    foreground: np.ndarray | None         # float32 (H, W, 3) RGB in [0, 1], or None if not asked
    trimap: np.ndarray | None             # uint8 (H, W) classes 0 B / 1 U / 2 F, or None
    times: StageTimes


def as_rgb_uint8(image: "np.ndarray | str | os.PathLike") -> np.ndarray:
    """An image as uint8 RGB (H, W, 3): a path (read with `shm.io.read_image`), or an array (or
    PIL image) grey (H, W) / (H, W, 1), RGB or RGBA (alpha dropped). Pixels: uint8; other
    integers in 0..255; floats in [0, 1]. Anything else (floats in 0..255, 16-bit values) is
    refused with a `ValueError` rather than clipped into a wrong matte."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"expected an image (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    image = image[..., :3]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if np.issubdtype(image.dtype, np.floating):
        # Half an 8-bit level of slack for rounding; a photo in 0..255 as floats is far above it.
        if not np.all(np.isfinite(image)) or image.min() < -0.5 / 255 or image.max() > 1 + 0.5 / 255:
            raise ValueError(f"float pixels must be in [0, 1], got values in [{np.nanmin(image):g}, "
                             f"{np.nanmax(image):g}]: divide by 255 (or pass uint8)")
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer) and (image.size == 0 or (image.min() >= 0 and image.max() <= 255)):
        return image.astype(np.uint8)
    raise ValueError(f"expected uint8 pixels, integers in 0..255 or floats in [0, 1], got {image.dtype} "
                     f"values in [{image.min()}, {image.max()}]")


class ModelOutputError(ValueError):
    """The model gave unusable numbers (NaN or infinite) for an image."""


class Matter:
    """Alpha mattes of people in photos: an SHM model plus full-resolution upsampling.

    `model`: a runner of any backend (`shm.backends.load_backend`), or a Keras model taking
    (B, H, W, 3) RGB [0, 1] and returning a dict with `alpha` (B, H, W, 1) and `trimap`
    (B, H, W, 3), such as a `SemanticHumanMatting`. A model with a fixed input size (an
    export made without `dynamic_size`) runs at that size (the photo fitted into it with its
    aspect ratio, the rest padded); a dynamic one (a model built without input size, the shipped
    `.onnx`) runs at the photo resized so its longer side is `working_size` (at most the photo's
    own, keeping the aspect ratio, each side a multiple of `size_multiple`: by default 32, which
    every preset's model takes; training's photo validation gives its preset's, as its data use).
    `guided_radius` / `guided_eps`: the guided filter
    that brings alpha back to the photo's resolution (radius in network-size pixels; smaller eps
    follows the photo's edges more closely).
    """

    def __init__(self, model: "Runner | keras.Model", working_size: int | None = None,
                 guided_radius: int = 1, guided_eps: float = 1e-5, size_multiple: int = SIZE_MULTIPLE):
        self.runner = model if isinstance(model, Runner) else load_backend(model)
        self.fixed_size = self.runner.input_size
        if working_size is None and self.fixed_size is None:
            from models.presets import PRESETS
            working_size = PRESETS["lite"]["working_size"]
        if working_size is not None and working_size < size_multiple:
            raise ValueError(f"working_size must be at least {size_multiple}, got {working_size}")
        self.working_size = working_size
        self.size_multiple = size_multiple
        self.guided_radius = guided_radius
        self.guided_eps = guided_eps
        self.model_file: Path | None = None  # set by from_weights; names the model in output records

    @classmethod
    def from_weights(cls, path: str | os.PathLike, working_size: int | None = None,
                     backend: str | None = None, num_threads: int | None = None,
                     preset: str | None = None, trust_savedmodel: bool = False, **kwargs) -> "Matter":
        """Load an SHM model file of any format `shm.backends` runs: a whole model saved as
        `.keras`, an export (`.tflite`, `.onnx`, SavedModel directory, which is refused unless
        `trust_savedmodel`: it can run file operations), or with `preset` a training checkpoint
        (`combined_model.py`'s `best.weights.h5`). `backend`: one of
        `shm.backends.BACKENDS`, by default the one the file's format needs; `num_threads`: the
        TFLite / ONNX runtime's threads. `ModelFileError` naming the file if it cannot be used."""
        path = Path(path)
        if not path.exists():
            raise ModelFileError(f"{path}: no such model file; {TRAINING_HINT}")
        runner = load_backend(path, backend=backend, num_threads=num_threads, trust_savedmodel=trust_savedmodel,
                              preset=preset)
        matter = cls(runner, working_size=working_size, **kwargs)
        matter.model_file = path
        return matter

    @classmethod
    def from_preset(cls, preset: str = "lite", weights: str | os.PathLike | None = None,
                    working_size: int | None = None, backend: str | None = None,
                    num_threads: int | None = None, **kwargs) -> "Matter":
        """The preset's shipped model for `backend` (default: the preset's `default_backend`, its
        fastest correct path), or `weights` (any file `from_weights` takes, training checkpoints of
        this preset included), at the preset's working size (or `working_size`); `backend`,
        `num_threads` and `trust_savedmodel` (in `kwargs`) as in `from_weights`."""
        from models.presets import PRESETS, shipped_file
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        settings = PRESETS[preset]
        if weights is None:
            backend = backend or settings["default_backend"]
            shipped = settings["weights"]
            if not shipped:
                raise ModelFileError(f"preset {preset!r} ships no weights; {TRAINING_HINT}")
            if backend not in shipped:
                raise ValueError(f"preset {preset!r} ships no {backend} model (it ships {', '.join(sorted(shipped))}); "
                                 f"write one with export.py and give it as weights")
            weights = shipped_file(shipped[backend])
        return cls.from_weights(weights, working_size=working_size or settings["working_size"],
                                backend=backend, num_threads=num_threads, preset=preset, **kwargs)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) the network runs at for a photo of `height` x `width`: a fixed-size model's
        size, else `shm.geometry.network_size` (the rule training uses too)."""
        if self.fixed_size is not None:
            return self.fixed_size
        return network_size(height, width, self.working_size, self.size_multiple)

    def content_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the photo inside the network input: all of it for a dynamic-size
        model; for a fixed-size one the photo keeps its aspect ratio, centred, and the rest is padding."""
        network_height, network_width = self.network_size(height, width)
        if self.fixed_size is None:
            return 0, 0, network_height, network_width
        scale = min(network_height / height, network_width / width)
        content_height = min(network_height, max(1, round(height * scale)))
        content_width = min(network_width, max(1, round(width * scale)))
        return ((network_height - content_height) // 2, (network_width - content_width) // 2,
                content_height, content_width)

    def matte(self, image: "np.ndarray | str | os.PathLike", foreground: bool = True,
              trimap: bool = False) -> MatteResult:
        """Alpha (and optionally foreground colours and trimap) of `image` (an array or a photo's
        path, see `as_rgb_uint8`) at its own resolution."""
        return self.matte_batch([image], foreground=foreground, trimap=trimap)[0]

    def matte_batch(self, images: "Sequence[np.ndarray | str | os.PathLike]", foreground: bool = True,
                    trimap: bool = False) -> list[MatteResult]:
        """`matte` of several images, the network run once on each group that shares a network
        size (`network_size`); each result's network time is its share of its group's."""
        images = [as_rgb_uint8(image) for image in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(self.network_size(*image.shape[:2]), []).append(index)
        results: list[MatteResult] = [None] * len(images)
        for (network_height, network_width), indices in groups.items():
            start = time.perf_counter()
            smalls, boxes, padded = [], [], []
            for index in indices:
                top, left, small_height, small_width = self.content_box(*images[index].shape[:2])
                small = resize(images[index], small_height, small_width)
                # A fixed-size model sees the photo undistorted, padded with its edge pixels.
                padded.append(cv2.copyMakeBorder(small, top, network_height - small_height - top, left,
                                                 network_width - small_width - left, cv2.BORDER_REPLICATE))
                smalls.append(small)
                boxes.append((slice(top, top + small_height), slice(left, left + small_width)))
            outputs = self.runner(np.stack(padded).astype(np.float32) / 255.0)
            network = (time.perf_counter() - start) / len(indices)
            for row, (index, small, box) in enumerate(zip(indices, smalls, boxes)):
                results[index] = self._finish(images[index], small, outputs["alpha"][(row, *box)][..., 0],
                                              outputs["trimap"][(row, *box)] if trimap else None, foreground)
                results[index].times.network = network
        return results

    def _finish(self, image: np.ndarray, small: np.ndarray, alpha_low: np.ndarray,
                trimap_low: np.ndarray | None, foreground: bool) -> MatteResult:
        """The network's outputs for `image` (on its content box, `small`) at the image's resolution."""
        if not np.isfinite(alpha_low).all():
            raise ModelOutputError("the model's alpha is not a number (NaN or infinite) for this image: "
                                   "the model file is broken (e.g. trained into NaN)")
        height, width = image.shape[:2]
        times = StageTimes()
        start = time.perf_counter()
        alpha = guided_upsample(alpha_low, image, self.guided_radius, self.guided_eps, image_low=small)
        classes = None
        if trimap_low is not None:
            probabilities = RowUpsampler(trimap_low, height, width)
            classes = np.empty((height, width), np.uint8)
            for rows in row_bands(height):
                classes[rows] = np.argmax(probabilities.rows(rows.start, rows.stop), axis=-1)
        times.upsampling = time.perf_counter() - start

        start = time.perf_counter()
        colours = estimate_foreground(image, alpha) if foreground else None
        times.foreground = time.perf_counter() - start
        return MatteResult(alpha=alpha, foreground=colours, trimap=classes, times=times)

    def predict(self, image: "np.ndarray | str | os.PathLike") -> np.ndarray:
        """Alpha float32 (H, W) in [0, 1] of an RGB image (uint8, or float in [0, 1]) or a photo's path."""
        return self.matte(image, foreground=False).alpha


# ---------------------------------------------------------------------------------------------------
# Backgrounds

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


def fit_background(background: np.ndarray, height: int, width: int) -> np.ndarray:
    """A colour as it is; an image scaled to cover `height` x `width` and centre-cropped."""
    if background.ndim == 1:
        return background
    scale = max(height / background.shape[0], width / background.shape[1])
    scaled_height = max(height, round(background.shape[0] * scale))
    scaled_width = max(width, round(background.shape[1] * scale))
    scaled = cv2.resize(background, (scaled_width, scaled_height), interpolation=cv2.INTER_AREA
                        if scale < 1 else cv2.INTER_LINEAR)
    top, left = (scaled_height - height) // 2, (scaled_width - width) // 2
    return scaled[top:top + height, left:left + width]


# ---------------------------------------------------------------------------------------------------
# Jobs: what to matte and where its outputs go

@dataclasses.dataclass(frozen=True)
class Job:
    """One photo or video. `output_stem` + a suffix of IMAGE_OUTPUTS / VIDEO_OUTPUTS = an output;
    or, when `output_file` is set, that one file (`-`: standard output) holds the only output.
    `frame_rate`: `path` is a folder of images, the frames of one video at that rate."""

    label: str
    output_stem: Path
    path: Path | None = None
    image: np.ndarray | None = dataclasses.field(default=None, compare=False)
    output_file: Path | None = None
    frame_rate: float | None = None

    @property
    def is_video(self) -> bool:
        return self.frame_rate is not None or (self.path is not None and self.path.suffix.lower() in VIDEO_EXTENSIONS)

    def load_image(self) -> np.ndarray:
        return self.image if self.image is not None else read_image(self.path)


@dataclasses.dataclass
class OutputOptions:
    """Which outputs to write, and where.

    `kinds`: the outputs to write (of OUTPUT_KINDS; each medium takes those it has), or None for
    the defaults: photos `alpha` and `rgba` (+ `composite` with a `background`, + `trimap` with
    `save_trimap`), videos `alpha` and `composite`. `quiet`: no progress bar, no timing lines.
    """

    output_dir: Path
    background: np.ndarray | None = None  # parse_background's result
    save_trimap: bool = False
    overwrite: bool = False
    print_timings: bool = False
    kinds: tuple[str, ...] | None = None
    quiet: bool = False

    def __post_init__(self):
        unknown = sorted(set(self.kinds or ()) - set(OUTPUT_KINDS))
        if unknown:
            raise ValueError(f"unknown output {', '.join(unknown)}; choose from {', '.join(OUTPUT_KINDS)}")


def looks_like_output(path: PurePath) -> bool:
    """Named like an output (`*_alpha.png`, ...), or inside a `frames` output folder: an earlier
    result, not an input."""
    files = [suffix for suffix in (*IMAGE_OUTPUTS.values(), *VIDEO_OUTPUTS.values()) if PurePath(suffix).suffix]
    return (any(path.name.endswith(suffix) for suffix in files)
            or path.parent.name.endswith(VIDEO_OUTPUTS["frames"]))


def collect_jobs(input_path: str | os.PathLike, output_dir: str | os.PathLike,
                 recursive: bool = False, frame_rate: float | None = None) -> tuple[list[Job], list[Path]]:
    """The jobs for a photo, a video or a folder, and the folder's files that are not media.

    Folder outputs keep the subfolders (with `recursive`); inputs whose output names would
    collide get unique ones (`unique_output_stems`): a job whose `output_stem` differs from its
    file's stem was renamed. Files inside `output_dir` named like outputs (`*_alpha.png`, ...)
    are earlier results, not inputs. With `frame_rate`, the folder's images (sorted by name) are
    the frames of one video. A folder without any photo or video raises `ValueError` ("no images
    or videos found").
    """
    input_path, output_dir = Path(input_path), Path(output_dir)
    if frame_rate is not None:
        if not input_path.is_dir():
            raise ValueError(f"{input_path}: not a folder; a frame rate makes the input folder's images one video")
        return [Job(input_path.name, output_dir / input_path.resolve().name, path=input_path,
                    frame_rate=frame_rate)], []
    if input_path.is_file():
        return [Job(input_path.name, output_dir / input_path.stem, path=input_path)], []
    if not input_path.is_dir():
        raise FileNotFoundError(f"{input_path}: no such file or folder")
    output_resolved = output_dir.resolve()
    media, ignored = [], []
    for path in sorted(input_path.glob("**/*" if recursive else "*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(input_path).parts):
            continue
        if output_resolved in path.resolve().parents and looks_like_output(path):
            continue
        suffix = path.suffix.lower()
        (media if suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS else ignored).append(path)
    if not media:
        others = f" ({len(ignored)} other files)" if ignored else ""
        subfolders = (" (subfolders are searched with --recursive)"
                      if not recursive and any(path.is_dir() for path in input_path.iterdir()) else "")
        raise ValueError(f"{input_path}: no images or videos found{others}{subfolders}")
    stems = unique_output_stems([path.relative_to(input_path) for path in media])
    jobs = [Job(str(path.relative_to(input_path)), output_dir / stem, path=path) for path, stem in zip(media, stems)]
    return jobs, ignored


def unique_output_stems(relative_paths: list[Path]) -> list[Path]:
    """One output stem per input path (relative to the input folder), all different even on a
    case-insensitive file system, planned before anything is written.

    A stem used once stays as it is (`b.png` -> `b`); inputs sharing a stem (`a.jpg`, `a.png`,
    `a.JPG`) keep their extension (`a_jpg`, `a_png`, `a_JPG_2`: the extension's case cannot
    tell outputs apart); a kept extension that meets another name (`b.jpg` + `b.png` +
    `b_jpg.png`) gets the next free number.
    """
    def key(stem: Path) -> str:
        return stem.as_posix().casefold()

    natural = [path.with_suffix("") for path in relative_paths]
    counts: dict[str, int] = {}
    for stem in natural:
        counts[key(stem)] = counts.get(key(stem), 0) + 1
    taken = {key(stem) for stem in natural if counts[key(stem)] == 1}
    stems = []
    for path, stem in zip(relative_paths, natural):
        if counts[key(stem)] > 1:
            base = stem.with_name(f"{stem.name}_{path.suffix.lstrip('.')}")
            stem, number = base, 1
            while key(stem) in taken:
                number += 1
                stem = base.with_name(f"{base.name}_{number}")
            taken.add(key(stem))
        stems.append(stem)
    return stems


def renamed_outputs(jobs: list[Job]) -> list[str]:
    """One line per job whose outputs do not take its file's stem (`unique_output_stems`)."""
    return [f"{job.label}: outputs named {job.output_stem.name}_* (another input has the same name)"
            for job in jobs if job.path is not None and job.output_stem.name != job.path.stem]


def output_kinds(job: Job, options: OutputOptions) -> list[str]:
    """The kinds of output a job writes (see `OutputOptions.kinds`); `ValueError` if none applies."""
    outputs = VIDEO_OUTPUTS if job.is_video else IMAGE_OUTPUTS
    if options.kinds is None:
        kinds = ["alpha", "composite"] if job.is_video else \
            ["alpha", "rgba"] + ["composite"] * (options.background is not None) + ["trimap"] * options.save_trimap
    else:
        kinds = [kind for kind in options.kinds if kind in outputs]
    medium = "a video" if job.is_video else "a photo"
    if not kinds:
        raise ValueError(f"{job.path or job.label}: none of the outputs asked for ({', '.join(options.kinds)}) "
                         f"applies to {medium} (it has {', '.join(outputs)})")
    if job.output_file is not None and len(kinds) != 1:
        raise ValueError(f"{job.output_file}: one output file takes one output, not {', '.join(kinds)}; "
                         "choose one with --outputs, or give a folder as --output")
    return kinds


def output_paths(job: Job, options: OutputOptions) -> dict[str, Path]:
    """Output files of a job by kind (`alpha`, `rgba`, `composite`, `foreground`, `trimap`; for
    videos `frames`, a folder)."""
    outputs = VIDEO_OUTPUTS if job.is_video else IMAGE_OUTPUTS
    kinds = output_kinds(job, options)
    if job.output_file is None:
        return {kind: Path(f"{job.output_stem}{outputs[kind]}") for kind in kinds}
    kind, file = kinds[0], job.output_file
    expected = Path(outputs[kind]).suffix
    if str(file) == STANDARD_STREAM:
        if job.is_video:
            raise ValueError(f"{job.path}: a video cannot go to standard output; give a file or folder as --output")
    elif file.suffix.lower() != expected:
        raise ValueError(f"{file}: the {kind} output of {'a video' if job.is_video else 'a photo'} is "
                         f"{expected.lstrip('.').upper() or 'a folder'}; name the file {file.stem}{expected}")
    return {kind: file}


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
        return TRIMAP_GREY_LEVELS[result.trimap]
    if kind == "composite":
        background = background if background is not None else DEFAULT_BACKGROUND
        return composite(result.foreground, result.alpha, fit_background(background, *image.shape[:2]))
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


def matte_image_job(matter: Matter, job: Job, options: OutputOptions) -> StageTimes | None:
    """Matte one photo and write its outputs; None when every output exists already."""
    paths = output_paths(job, options)
    if not options.overwrite and all(path.exists() and str(path) != STANDARD_STREAM for path in paths.values()):
        return None
    image = job.load_image()
    result = matter.matte(image, foreground=bool(FOREGROUND_KINDS & paths.keys()), trimap="trimap" in paths)
    result.times.writing = write_image_outputs(result, image, paths, options.background, options.overwrite)
    return result.times


def matte_video_job(matter: Matter, job: Job, options: OutputOptions) -> tuple[StageTimes, int] | None:
    """Matte every frame of a video (or of a folder of frames) into its video outputs (same frame
    rate, the input's audio; `shm.video`). Outputs that exist are kept unless `overwrite`.

    Returns the summed times and the number of frames; None when every output exists already.
    """
    paths = {kind: path for kind, path in output_paths(job, options).items()
             if options.overwrite or not path.exists()}
    if not paths:
        return None
    source = (FrameSource.from_images(job.path, job.frame_rate) if job.frame_rate is not None
              else FrameSource.from_video(job.path))
    foreground = bool(FOREGROUND_KINDS & paths.keys())
    total, frames = StageTimes(), 0
    with contextlib.ExitStack() as stack:
        writers = {}
        for kind, path in paths.items():
            temporary = stack.enter_context(atomic_folder(path) if kind == "frames" else atomic_path(path))
            writers[kind] = VideoWriter(temporary, kind, source.frame_rate, source.audio_path)
            stack.callback(writers[kind].abort)  # runs before the rename of a failed run's files
        bar = stack.enter_context(progress(total=source.frame_count, desc=job.label, unit="frame", leave=False,
                                           position=1, quiet=options.quiet))
        for frame in source:
            result = matter.matte(frame, foreground=foreground)
            start = time.perf_counter()
            for kind, writer in writers.items():
                writer.write(output_array(kind, result, frame, options.background))
            result.times.writing = time.perf_counter() - start
            total, frames = total + result.times, frames + 1
            bar.update()
        if frames == 0:
            raise VideoError(f"{job.path}: no frame could be read (corrupt file or unsupported codec)")
        start = time.perf_counter()
        for writer in writers.values():
            writer.close()
        total.writing += time.perf_counter() - start
    if source.frame_count is not None and frames < source.frame_count:
        # The outputs hold every frame there was; the run still fails so that nobody takes them for whole.
        raise VideoError(f"{job.path}: only {frames} of the {source.frame_count} frames its header announces could "
                         f"be read (truncated or corrupt file); its outputs hold those {frames} frames")
    return total, frames


# ---------------------------------------------------------------------------------------------------
# What made the outputs of a folder

# Hidden, so folder runs never take it for an input.
SETTINGS_RECORD = ".shm_inference.json"


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of every file of a directory (a SavedModel) in name order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def output_settings(matter: Matter, background: np.ndarray | None) -> dict:
    """What decides the pixels of a run's outputs: the model file's content, the network size, the
    guided filter, and the background of composites."""
    network = (f"fixed {matter.fixed_size[0]}x{matter.fixed_size[1]}" if matter.fixed_size
               else f"longer side {matter.working_size}")
    return {"model": f"{matter.model_file.name} sha256:{file_digest(matter.model_file)[:16]}",
            "network": network, "guided_filter": [matter.guided_radius, matter.guided_eps],
            "background": None if background is None
            else f"{background.shape} sha256:{hashlib.sha256(background.tobytes()).hexdigest()[:16]}"}


def check_output_settings(matter: Matter, jobs: list[Job], options: OutputOptions) -> str | None:
    """Keep one folder's outputs from mixing two settings (another model, size or background), then
    record this run's settings in the folder.

    Raises `ValueError` naming the folder when outputs this run would keep (no `overwrite`) were
    made with other settings: a background matters only where a composite exists. Returns a note
    when existing outputs have no record (older runs), else None.
    """
    if matter.model_file is None:
        return None
    settings = output_settings(matter, options.background)
    record_path = Path(options.output_dir) / SETTINGS_RECORD
    existing = [path for job in jobs for path in output_paths(job, options).values() if path.exists()]
    note = None
    if existing and not options.overwrite:
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = None
        if record is None:
            note = (f"{options.output_dir}: {len(existing)} existing outputs have no record of the settings that "
                    "made them; they are kept as they are (--overwrite replaces them)")
        else:
            composites = any(path.name.endswith((IMAGE_OUTPUTS["composite"], VIDEO_OUTPUTS["composite"]))
                             for path in existing)
            differing = [name for name in settings if record.get(name) != settings[name]
                         and (name != "background" or composites)]
            if differing:
                shown = "; ".join(f"{name} {record.get(name)} there, {settings[name]} now" for name in differing)
                raise ValueError(f"{options.output_dir}: holds outputs made with other settings ({shown}); give "
                                 "--overwrite to replace them or choose another --output")
    with atomic_path(record_path) as temporary:
        temporary.write_text(json.dumps(settings, indent=2) + "\n")
    return note


# ---------------------------------------------------------------------------------------------------
# Runs over many jobs

@dataclasses.dataclass
class Summary:
    """What a run did: counts, errors and the summed stage times of the matted images/frames."""

    processed: int = 0
    skipped: int = 0
    ignored: int = 0
    frames: int = 0
    times: StageTimes = dataclasses.field(default_factory=StageTimes)
    errors: list[str] = dataclasses.field(default_factory=list)
    interrupted: bool = False  # Ctrl-C stopped the run; the counts are what was done before

    @property
    def failed(self) -> int:
        return len(self.errors)

    def line(self) -> str:
        text = (f"{self.processed} processed, {self.skipped} skipped (outputs exist), "
                f"{self.failed} failed")
        if self.ignored:
            text += f", {self.ignored} non-image files ignored"
        if self.frames:
            text += f"; per image/frame {self.times.describe(self.frames)}"
        return f"interrupted: {text}" if self.interrupted else text


def error_line(error: Exception, name: str | os.PathLike) -> str:
    """One line for a job that failed: a `ValueError` / `OSError`'s message (ours name the file),
    a `ModelOutputError` or any other error (cv2.error, a TF error) after `name` (the latter as
    `Type: the last line of its message`)."""
    if isinstance(error, ModelOutputError):
        return f"{name}: {error}"
    if isinstance(error, (ValueError, OSError)):
        return str(error)
    return f"{name}: {describe_failure(error)}"


def matte_jobs(matter: Matter, jobs: list[Job], options: OutputOptions) -> Summary:
    """Matte every job with a progress bar; a failing job prints one line and the rest go on."""
    summary = Summary()

    def run(job: Job) -> None:
        try:
            if job.is_video:
                outcome = matte_video_job(matter, job, options)
                times, frames = outcome if outcome is not None else (None, 0)
            else:
                times, frames = matte_image_job(matter, job, options), 1
        except ModelOutputError as error:
            raise ValueError(error_line(error, job.path or job.label)) from None
        except (ValueError, OSError):
            raise
        except Exception as error:  # e.g. cv2.error or a TF error: still one line, and go on
            raise ValueError(error_line(error, job.path or job.label)) from None
        if times is None:
            summary.skipped += 1
            return
        summary.processed += 1
        summary.frames += frames
        summary.times = summary.times + times
        if options.print_timings:
            report(f"{job.label}: {times.describe(frames)}", options.quiet, file=sys.stderr)

    try:
        summary.errors = run_per_file(run, jobs, description="matting", quiet=options.quiet)
    except Interrupted as stop:
        summary.errors, summary.interrupted = stop.errors, True
    return summary


def describe_failure(error: Exception) -> str:
    """One line for an unexpected error while matting: "out of memory", "OpenCV: <its reason>",
    or the exception's name and last line."""
    if isinstance(error, MemoryError) or (isinstance(error, cv2.error) and error.code == cv2.Error.StsNoMem):
        return "out of memory"
    if isinstance(error, cv2.error):
        return f"OpenCV failed in {error.func} ({error.err})"
    reason = (str(error).strip().splitlines() or [""])[-1][:200]
    return f"{type(error).__name__}: {reason}"


# ---------------------------------------------------------------------------------------------------
# Webcam

def display_problem() -> str | None:
    """Why a preview window cannot open here, or None if it can."""
    if "GUI: NONE" in " ".join(cv2.getBuildInformation().split()):
        return ("this OpenCV is a headless build (no GUI): --camera needs a preview window; "
                "install opencv-python instead of opencv-python-headless")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set): --camera needs a screen for its preview window"
    return None


def run_camera(matter: Matter, index: int, background: np.ndarray | None) -> int:
    """Live preview of the webcam `index` composited onto `background` (q or Esc quits);
    returns the number of frames shown."""
    problem = display_problem()
    if problem:
        raise RuntimeError(problem)
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise OSError(f"camera {index}: cannot open it (no such camera or it is busy)")
    background = background if background is not None else DEFAULT_BACKGROUND
    window = f"shm-keras: camera {index} (q quits)"
    shown = 0
    try:
        while True:
            ok, frame_bgr = capture.read()
            if not ok:
                raise OSError(f"camera {index}: stopped delivering frames")
            frame = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            result = matter.matte(frame, foreground=True)
            mixed = composite(result.foreground, result.alpha, fit_background(background, *frame.shape[:2]))
            cv2.imshow(window, cv2.cvtColor(np.hstack([frame, mixed]), cv2.COLOR_RGB2BGR))
            shown += 1
            if (cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
                break
    finally:
        capture.release()
        cv2.destroyAllWindows()
    return shown
