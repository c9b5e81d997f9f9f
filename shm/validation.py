"""Scoring candidate models on validation photos the way users see them: the real inference path
(`shm.Matter`, full resolution, guided upsampling), against the binary person masks.

A validation split is a folder in the data layout: `image/`, `mask/` (binary, the reference) and
optionally `alpha/` (soft alphas, e.g. from `shm.alpha_from_mask`), paired by stem, optionally
restricted by a list file. Per photo (then averaged over the split):
- `sad`: whole-image SAD against the mask (sum |alpha - mask| / 1000), `iou`: IoU of alpha > 0.5;
- `sad_soft`: whole-image SAD against the soft alpha, when the split has one;
- `sad_edge`: SAD within `EDGE_BAND_FRACTION` of the shorter side around the mask's edge, where
  matting (not segmentation) decides.

    python evaluate.py candidates --model runs/shm_v2.onnx --split data/ccp_val data/hs290_val

prints one table with the shipped model beside each candidate. The training engine uses the same
scores to pick the best epoch (`shm.training.callbacks.PhotoValidation`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from shm import console
from shm.io import images_by_stem, read_alpha, read_image
from shm.metrics import iou, sad_whole

SCORES = ("sad", "iou", "sad_soft", "sad_edge")
# Half-width of the edge band, as a fraction of the photo's shorter side.
EDGE_BAND_FRACTION = 0.02


@dataclasses.dataclass(frozen=True)
class ValidationPhoto:
    name: str
    image: Path
    mask: Path
    soft_alpha: Path | None


@dataclasses.dataclass(frozen=True)
class ValidationSplit:
    """The photos of one validation folder (see the module docstring)."""

    name: str
    photos: tuple[ValidationPhoto, ...]

    @classmethod
    def from_folder(cls, root: str | os.PathLike, list_file: str | os.PathLike | None = None,
                    name: str | None = None) -> "ValidationSplit":
        root = Path(root)
        for required in ("image", "mask"):
            if not (root / required).is_dir():
                raise ValueError(f"{root}: a validation split needs image/ and mask/ folders (no {required}/)")
        images, masks = images_by_stem(root / "image"), images_by_stem(root / "mask")
        alphas = images_by_stem(root / "alpha") if (root / "alpha").is_dir() else {}
        stems = sorted(images) if list_file is None else Path(list_file).read_text().split()
        photos = []
        for stem in stems:
            if stem not in images or stem not in masks:
                raise ValueError(f"{root}: {stem!r} has no photo or no mask")
            photos.append(ValidationPhoto(stem, images[stem][0], masks[stem][0],
                                          alphas[stem][0] if stem in alphas else None))
        if not photos:
            raise ValueError(f"{root}: no validation photos")
        return cls(name or root.name, tuple(photos))


def edge_band(mask: np.ndarray, fraction: float = EDGE_BAND_FRACTION) -> np.ndarray:
    """Boolean (H, W): pixels within `fraction` of the shorter side of a binary mask's edge."""
    radius = max(1, round(fraction * min(mask.shape)))
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


def score_split(predict, split: ValidationSplit, progress: bool = False) -> dict[str, float]:
    """Mean scores of `predict` (RGB uint8 (H, W, 3) -> alpha (H, W), e.g. `Matter.predict`) on a split."""
    rows = []
    photos: Iterable[ValidationPhoto] = console.progress(split.photos, quiet=not progress, desc=split.name,
                                                        unit="photo", leave=False)
    for photo in photos:
        image = read_image(photo.image)
        shape = image.shape[:2]
        soft = None if photo.soft_alpha is None else _reference(photo.soft_alpha, shape, cv2.INTER_LINEAR)
        rows.append(score_photo(predict(image), _reference(photo.mask, shape, cv2.INTER_NEAREST), soft))
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
                   num_threads: int | None = None, progress: bool = True) -> dict[str, dict[str, dict[str, float]]]:
    """Scores of each model file (through `Matter.from_weights`, its default backend) on each split;
    "shipped" stands for the lite preset's shipped model."""
    from shm.inference import Matter

    results = {}
    for model in models:
        matter = (Matter.from_preset("lite", num_threads=num_threads) if str(model) == "shipped"
                  else Matter.from_weights(model, num_threads=num_threads))
        results[str(model)] = {split.name: score_split(matter.predict, split, progress) for split in splits}
    return results
