"""`Matter`, the Python API of matting: an image in, its alpha (foreground colours, trimap) out.

The network runs at its working size; the alpha comes back to the photo's own resolution through
the Fast Guided Filter (`shm.upsampling`), and the cut-out gets estimated foreground colours
(`shm.foreground`), so a 12 MP photo costs one small network pass plus a few full-size filters.

The network is any format `shm.backends` runs (Keras, SavedModel, TFLite, ONNX); TFLite and
ONNX need neither TensorFlow nor Keras. Folders, videos and their output files are `shm.jobs`'
(`inference.py`), the pictures written `shm.outputs`', the webcam preview `shm.camera`'.

Example:
    from shm import Matter
    matter = Matter.from_preset("lite")                # weights/shm_lite.keras
    matter = Matter.from_weights("exports/shm_lite.tflite")   # an export of export.py
    alpha = matter.predict(rgb_uint8)                  # float32 (H, W) in [0, 1]
    result = matter.matte(rgb_uint8, trimap=True)      # .alpha, .foreground, .trimap, .times
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from shm.backends import ModelFileError, Runner, load_backend
from shm.foreground import estimate_foreground
from shm.geometry import DEFAULT_SIZE_MULTIPLE, network_size
from shm.io import read_image, to_uint8
from shm.upsampling import DEFAULT_CLAMP, check_clamp_margin, clamp_alpha, guided_upsample, resize, upsample_classes

if TYPE_CHECKING:
    import keras

TRAINING_HINT = ("train one with `python pretrain_tnet.py train_tnet`, `python pretrain_mnet.py` and "
                 "`python combined_model.py` (see docs/training.md), or give another file with --weights")


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
        return to_uint8(image)
    if np.issubdtype(image.dtype, np.integer) and (image.size == 0 or (image.min() >= 0 and image.max() <= 255)):
        return image.astype(np.uint8)
    raise ValueError(f"expected uint8 pixels, integers in 0..255 or floats in [0, 1], got {image.dtype} "
                     f"values in [{image.min()}, {image.max()}]")


class ModelOutputError(ValueError):
    """The model gave unusable numbers (NaN or infinite) for an image."""


@dataclasses.dataclass(frozen=True)
class NetworkView:
    """How a photo is put before the network: the one way of `Matter` and of the T-Net's trimaps
    (`shm.training.stages.predict_trimaps`).

    A model of fixed input size (`fixed_size`: an export made without `dynamic_size`) sees the
    photo fitted into that size with its aspect ratio, centred, the rest padded with its edge
    pixels; a model of dynamic size sees it resized so its longer side is `working_size` (at most
    the photo's own, keeping the aspect ratio, each side a multiple of `size_multiple`:
    `shm.geometry.network_size`, the rule training uses too).
    """

    working_size: int | None
    fixed_size: tuple[int, int] | None = None
    size_multiple: int = DEFAULT_SIZE_MULTIPLE

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) the network runs at for a photo of `height` x `width`."""
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

    def network_input(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
        """For a uint8 RGB photo: the network's input (float32 (h, w, 3) RGB in [0, 1]), the photo
        resized to its content box (uint8, the guided filter's low-resolution guide), and that box
        in the input as (rows, columns) slices, where the network's outputs for the photo are."""
        network_height, network_width = self.network_size(*image.shape[:2])
        top, left, small_height, small_width = self.content_box(*image.shape[:2])
        small = resize(image, small_height, small_width)
        padded = cv2.copyMakeBorder(small, top, network_height - small_height - top, left,
                                    network_width - small_width - left, cv2.BORDER_REPLICATE)
        box = (slice(top, top + small_height), slice(left, left + small_width))
        return padded.astype(np.float32) / 255.0, small, box


class Matter:
    """Alpha mattes of people in photos: an SHM model plus full-resolution upsampling.

    `model`: a runner of any backend (`shm.backends.load_backend`), or a Keras model taking
    (B, H, W, 3) RGB [0, 1] and returning a dict with `alpha` (B, H, W, 1) and `trimap`
    (B, H, W, 3), such as a `SemanticHumanMatting`. A model with a fixed input size (an
    export made without `dynamic_size`) runs at that size (the photo fitted into it with its
    aspect ratio, the rest padded); a dynamic one (a model built without input size, the shipped
    `.onnx`) runs at the photo resized so its longer side is `working_size` (`NetworkView`;
    each side a multiple of `size_multiple`: by default 32, which every preset's model takes;
    training's photo validation gives its preset's, as its data use).
    `guided_radius` / `guided_eps`: the guided filter that brings alpha back to the photo's
    resolution (radius in network-size pixels; smaller eps follows the photo's edges more closely).
    `clamp`: alphas within this margin of 0 or 1 become 0 or 1, the rest is stretched between
    (`shm.upsampling.clamp_alpha`; 0 keeps the network's alpha as it is).
    """

    def __init__(self, model: "Runner | keras.Model", working_size: int | None = None,
                 guided_radius: int = 1, guided_eps: float = 1e-5, clamp: float = DEFAULT_CLAMP,
                 size_multiple: int = DEFAULT_SIZE_MULTIPLE):
        self.runner = model if isinstance(model, Runner) else load_backend(model)
        fixed_size = self.runner.input_size
        if working_size is None and fixed_size is None:
            from models.presets import PRESETS
            working_size = PRESETS["lite"]["working_size"]
        if working_size is not None and working_size < size_multiple:
            raise ValueError(f"working_size must be at least {size_multiple}, got {working_size}")
        self.view = NetworkView(working_size, fixed_size, size_multiple)
        self.guided_radius = guided_radius
        self.guided_eps = guided_eps
        self.clamp = check_clamp_margin(clamp)  # an unusable margin fails here, not per photo
        self.model_file: Path | None = None  # set by from_weights; names the model in output records

    @property
    def working_size(self) -> int | None:
        return self.view.working_size

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """The model's fixed input (H, W), or None when it takes any size."""
        return self.view.fixed_size

    @property
    def size_multiple(self) -> int:
        return self.view.size_multiple

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
        """`NetworkView.network_size`: the (h, w) the network runs at for a photo of `height` x `width`."""
        return self.view.network_size(height, width)

    def content_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """`NetworkView.content_box`: (top, left, h, w) of the photo inside the network input."""
        return self.view.content_box(height, width)

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
        for indices in groups.values():
            start = time.perf_counter()
            inputs, smalls, boxes = zip(*(self.view.network_input(images[index]) for index in indices))
            outputs = self.runner(np.stack(inputs))
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
        alpha = clamp_alpha(guided_upsample(alpha_low, image, self.guided_radius, self.guided_eps, image_low=small),
                            self.clamp)
        classes = upsample_classes(trimap_low, height, width) if trimap_low is not None else None
        times.upsampling = time.perf_counter() - start

        start = time.perf_counter()
        colours = estimate_foreground(image, alpha) if foreground else None
        times.foreground = time.perf_counter() - start
        return MatteResult(alpha=alpha, foreground=colours, trimap=classes, times=times)

    def predict(self, image: "np.ndarray | str | os.PathLike") -> np.ndarray:
        """Alpha float32 (H, W) in [0, 1] of an RGB image (uint8, or float in [0, 1]) or a photo's path."""
        return self.matte(image, foreground=False).alpha
