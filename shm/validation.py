"""Scoring candidate models on validation photos the way users see them: the real inference path
(`shm.Matter`, full resolution, guided upsampling), against the binary person masks.

A validation split is a folder in the data layout: `image/`, `mask/` (binary, the reference) and
optionally `alpha/` (soft alphas, e.g. from `shm.alpha_from_mask`), paired by stem, optionally
restricted by a list file. `predictions` runs a model over a split (each photo with its alpha and
references at the photo's size); `score_split` scores them, per photo (then averaged over the split):
- `sad`: whole-image SAD against the mask (sum |alpha - mask| / 1000), `iou`: IoU of alpha > 0.5;
- `sad_soft`: whole-image SAD against the soft alpha, when the split has one;
- `sad_edge`: SAD within `EDGE_BAND_FRACTION` of the shorter side around the mask's edge, where
  matting (not segmentation) decides.

    python evaluate.py candidates --model runs/shm_v2.onnx --split data/ccp_val data/hs290_val

prints one table with the shipped model beside each candidate. The training engine uses the same
scores to pick the best epoch (`shm.training.callbacks.PhotoValidation`), and
`benchmarks/validate_model.py` the same `predictions` for the model card's figures against soft
alphas (a split without masks).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from shm import console
from shm.io import images_by_stem, read_alpha, read_image
from shm.metrics import iou, sad_whole
from shm.trimap import band_px
from shm.upsampling import DEFAULT_CLAMP

SCORES = ("sad", "iou", "sad_soft", "sad_edge")
# Half-width of the edge band, as a fraction of the photo's shorter side.
EDGE_BAND_FRACTION = 0.02


@dataclasses.dataclass(frozen=True)
class ValidationPhoto:
    name: str
    image: Path
    mask: Path | None  # None only in a split made with `masks=False`
    soft_alpha: Path | None


@dataclasses.dataclass(frozen=True)
class ValidationSplit:
    """The photos of one validation folder (see the module docstring)."""

    name: str
    photos: tuple[ValidationPhoto, ...]

    @classmethod
    def from_folder(cls, root: str | os.PathLike, list_file: str | os.PathLike | None = None,
                    name: str | None = None, alpha_dir: str = "alpha", masks: bool = True) -> "ValidationSplit":
        """The photos of `root` (module docstring); `alpha_dir`: the folder of soft alphas.
        `masks=False`: a split of photos and soft alphas alone (every photo needs one), for figures
        against the soft alphas; `score_split` needs masks."""
        root = Path(root)
        reference = "mask" if masks else alpha_dir  # what every photo needs
        for required in ("image", reference):
            if not (root / required).is_dir():
                raise ValueError(f"{root}: a validation split needs image/ and {reference}/ folders (no {required}/)")
        images, references = images_by_stem(root / "image"), images_by_stem(root / reference)
        alphas = images_by_stem(root / alpha_dir) if (root / alpha_dir).is_dir() else {}
        stems = sorted(images) if list_file is None else Path(list_file).read_text().split()
        photos = []
        for stem in stems:
            if stem not in images or stem not in references:
                raise ValueError(f"{root}: {stem!r} has no photo or no {reference}/ file")
            photos.append(ValidationPhoto(stem, images[stem][0], references[stem][0] if masks else None,
                                          alphas[stem][0] if stem in alphas else None))
        if not photos:
            raise ValueError(f"{root}: no validation photos")
        return cls(name or root.name, tuple(photos))


def edge_band(mask: np.ndarray, fraction: float = EDGE_BAND_FRACTION) -> np.ndarray:
    """Boolean (H, W): pixels within `fraction` of the shorter side of a binary mask's edge."""
    radius = band_px(*mask.shape, fraction)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    binary = (mask > 0.5).astype(np.uint8)
    return cv2.dilate(binary, kernel) != cv2.erode(binary, kernel)


def score_photo(alpha: np.ndarray, mask: np.ndarray, soft_alpha: np.ndarray | None) -> dict[str, float]:
    """The scores of one predicted alpha (H, W) in [0, 1] (module docstring)."""
    mask = (mask > 0.5).astype(np.float32)
    band = edge_band(mask)
    return {"sad": float(sad_whole(alpha, mask)), "iou": float(iou(alpha, mask)),
            "sad_soft": float(sad_whole(alpha, soft_alpha)) if soft_alpha is not None else float("nan"),
            "sad_edge": float(np.sum(np.abs(alpha - mask)[band]) / 1000.0)}


def _reference(path: Path, shape: tuple[int, int], interpolation: int) -> np.ndarray:
    reference = read_alpha(path)
    if reference.shape != shape:
        reference = cv2.resize(reference, shape[::-1], interpolation=interpolation)
    return reference


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One photo of a split, a model's alpha of it and its references, all at the photo's size."""

    photo: ValidationPhoto
    image: np.ndarray  # uint8 RGB (H, W, 3)
    alpha: np.ndarray  # float32 (H, W) in [0, 1]
    mask: np.ndarray | None  # binary float32 (H, W)
    soft_alpha: np.ndarray | None  # float32 (H, W)


def predictions(predict, split: ValidationSplit, progress: bool = False) -> Iterator[Prediction]:
    """`predict` (RGB uint8 (H, W, 3) -> alpha (H, W), e.g. `Matter.predict`) on each photo of a
    split, in order, with the references resized to the photo (masks nearest, soft alphas bilinear)."""
    photos: Iterable[ValidationPhoto] = console.progress(split.photos, quiet=not progress, desc=split.name,
                                                        unit="photo", leave=False)
    for photo in photos:
        image = read_image(photo.image)
        shape = image.shape[:2]
        mask = None if photo.mask is None else _reference(photo.mask, shape, cv2.INTER_NEAREST)
        soft = None if photo.soft_alpha is None else _reference(photo.soft_alpha, shape, cv2.INTER_LINEAR)
        yield Prediction(photo, image, predict(image), mask, soft)


def score_split(predict, split: ValidationSplit, progress: bool = False) -> dict[str, float]:
    """Mean scores of `predict` (as in `predictions`) on a split with masks."""
    rows = [score_photo(result.alpha, result.mask, result.soft_alpha)
            for result in predictions(predict, split, progress)]
    # `sad_soft` averages over the photos that have a soft alpha (NaN when none has).
    return {score: float(np.nanmean([row[score] for row in rows])) if any(np.isfinite(row[score]) for row in rows)
            else float("nan") for score in SCORES}


def comparison_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: a row per model, for each split its SAD / IoU, soft-alpha SAD and edge SAD."""
    splits = list(next(iter(results.values())))
    header = "| model | " + " | ".join(f"{split} SAD / IoU | {split} SAD soft / edge" for split in splits) + " |"
    lines = [header, "| --- |" + " --- | --- |" * len(splits)]
    for model, by_split in results.items():
        cells = []
        for split in splits:
            scores = by_split[split]
            cells.append(f"{scores['sad']:.2f} / {scores['iou']:.3f}")
            cells.append(f"{scores['sad_soft']:.2f} / {scores['sad_edge']:.2f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_models(models: Sequence[str | os.PathLike], splits: Sequence[ValidationSplit],
                   num_threads: int | None = None, progress: bool = True, working_size: int | None = None,
                   clamp: float = DEFAULT_CLAMP) -> dict[str, dict[str, dict[str, float]]]:
    """Scores of each model file (through `Matter.from_weights`, its default backend) on each split;
    "shipped" stands for the lite preset's shipped model. `working_size` and `clamp` as in `Matter`."""
    from shm.inference import Matter

    results = {}
    for model in models:
        settings = {"num_threads": num_threads, "working_size": working_size, "clamp": clamp}
        matter = (Matter.from_preset("lite", **settings) if str(model) == "shipped"
                  else Matter.from_weights(model, **settings))
        results[str(model)] = {split.name: score_split(matter.predict, split, progress) for split in splits}
    return results
