"""Evaluating a folder of predicted alphas against ground truth: pairing, per-image errors, CSV, plot.

`evaluate.py` is the command line over these functions. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from shm import console, metrics
from shm.outputs import IMAGE_OUTPUTS
from shm.io import (IMAGE_EXTENSIONS, TRIMAP_PNG_VALUES, atomic_path, images_by_stem, list_images, read_alpha,
                    read_image)

CSV_COLUMNS = ("name", "sad", "mse", "grad", "conn", "sad_whole", "mse_whole", "mad_whole")
METRIC_COLUMNS = CSV_COLUMNS[1:]
SUMMARY_COLUMNS = (*METRIC_COLUMNS, "iou")  # IoU is not in the CSV's fixed header
PREDICTION_SUFFIX = "_alpha"  # `NAME_alpha.png` (what inference writes) pairs with `NAME.png`
# inference.py's other outputs beside `NAME_alpha.png` (`NAME_rgba.png`, ...): not predictions.
OTHER_OUTPUT_SUFFIXES = tuple(Path(suffix).stem for kind, suffix in IMAGE_OUTPUTS.items() if kind != "alpha")


class EvaluationError(ValueError):
    """A prediction that cannot be evaluated; the message names the file(s) and the problem."""


@dataclasses.dataclass(frozen=True)
class ImagePair:
    """One prediction and the files it is compared with (None when no partner was found)."""

    name: str
    pred: Path
    gt: Path | None
    trimap: Path | None = None


@dataclasses.dataclass(frozen=True)
class ImageResult:
    name: str
    errors: metrics.MattingErrors


def _first_by_stem(folder: Path) -> dict[str, Path]:
    # Sorted groups: `a.jpg` wins over `a.png`, deterministically.
    return {stem: paths[0] for stem, paths in images_by_stem(folder).items()}


def pair_files(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike,
               trimap_dir: str | os.PathLike | None = None) -> list[ImagePair]:
    """Pair every prediction in `pred_dir` with ground truth (and trimap) of the same stem.

    A prediction `NAME.ext` or `NAME_alpha.ext` pairs with `NAME.*` (an exact stem match first).
    In an `inference.py` output folder, `NAME_rgba.png`, `NAME_composite.png`, ... beside
    `NAME_alpha.png` are its other outputs, not predictions: they are left out.
    """
    ground_truths = _first_by_stem(Path(gt_dir))
    trimaps = _first_by_stem(Path(trimap_dir)) if trimap_dir is not None else {}
    pairs = []
    predictions = list_images(Path(pred_dir))
    stems = {pred.stem for pred in predictions}
    for pred in predictions:
        name = pred.stem
        if name.endswith(OTHER_OUTPUT_SUFFIXES) and f"{name.rsplit('_', 1)[0]}{PREDICTION_SUFFIX}" in stems:
            continue
        if name not in ground_truths and name.endswith(PREDICTION_SUFFIX):
            name = name[: -len(PREDICTION_SUFFIX)]
        pairs.append(ImagePair(name, pred, ground_truths.get(name), trimaps.get(name)))
    return pairs


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"


def evaluate_pair(pair: ImagePair, gt_dir: str | os.PathLike,
                  trimap_dir: str | os.PathLike | None = None) -> ImageResult:
    """Read one pair and compute its errors; raises a `ValueError` naming the file(s) on bad input."""
    if pair.gt is None:
        raise EvaluationError(f"{pair.pred}: no ground truth named {pair.name}.* in {gt_dir}")
    if trimap_dir is not None and pair.trimap is None:
        raise EvaluationError(f"{pair.pred}: no trimap named {pair.name}.* in {trimap_dir}")
    pred, gt = read_alpha(pair.pred), read_alpha(pair.gt)
    if pred.shape != gt.shape:
        raise EvaluationError(f"{pair.pred}: size {_size(pred)} differs from ground truth {pair.gt} ({_size(gt)})")
    trimap = None
    if pair.trimap is not None:
        # A trimap's grey levels are its content (an alpha channel would be read by read_alpha).
        trimap = read_image(pair.trimap)[..., 0]
        if trimap.shape != gt.shape:
            raise EvaluationError(f"{pair.trimap}: size {_size(trimap)} differs from ground truth {pair.gt} ({_size(gt)})")
        # A JPEG or 0/1/2 trimap would silently give a wrong (often empty) unknown region.
        stray = np.setdiff1d(np.unique(trimap), TRIMAP_PNG_VALUES)
        if stray.size:
            levels = "{}, {} or {}".format(*TRIMAP_PNG_VALUES)
            raise EvaluationError(f"{pair.trimap}: trimap values must be {levels}, found {stray[:5].tolist()}")
    return ImageResult(pair.name, metrics.matting_errors(pred, gt, trimap))


@dataclasses.dataclass
class FolderEvaluation:
    results: list[ImageResult]
    failures: list[str]  # one message per prediction that could not be evaluated


def evaluate_folders(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike,
                     trimap_dir: str | os.PathLike | None = None, progress: bool = True,
                     on_failure: Callable[[str], None] | None = None) -> FolderEvaluation:
    """Evaluate every prediction in `pred_dir`; a bad file is recorded (and passed to `on_failure`)
    and the others go on."""
    evaluation = FolderEvaluation([], [])
    first_by_name: dict[str, ImagePair] = {}
    pairs = pair_files(pred_dir, gt_dir, trimap_dir)
    for pair in console.progress(pairs, quiet=not progress, desc="evaluating", unit="image"):
        try:
            if pair.name in first_by_name:  # e.g. `a.png` and `a_alpha.png`: one CSV row per name
                raise EvaluationError(f"{pair.pred}: pairs with ground truth {pair.name!r} as "
                                      f"{first_by_name[pair.name].pred} does already; only the first is evaluated")
            first_by_name[pair.name] = pair
            evaluation.results.append(evaluate_pair(pair, gt_dir, trimap_dir))
        except ValueError as error:
            evaluation.failures.append(str(error))
            if on_failure is not None:
                on_failure(str(error))
    return evaluation


def plot_path_for(csv_path: str | os.PathLike) -> Path:
    """Where the plot of a CSV goes: beside it, with the suffix `.png`."""
    return Path(csv_path).with_suffix(".png")


def check_outputs_are_not_inputs(outputs: Iterable[str | os.PathLike],
                                 input_dirs: Iterable[str | os.PathLike | None]) -> None:
    """Raise `EvaluationError` when an output would overwrite an input image (or be read as one next time)."""
    for output in outputs:
        output = Path(output).resolve()
        for folder in input_dirs:
            if folder is not None and output.parent == Path(folder).resolve() \
                    and output.suffix.lower() in IMAGE_EXTENSIONS:
                raise EvaluationError(f"{output}: an output inside the input folder {folder}; write it elsewhere")


def _row(result: ImageResult) -> dict[str, float | None]:
    errors = result.errors.as_dict()
    return {column: errors[column] for column in METRIC_COLUMNS}


def mean_errors(results: Sequence[ImageResult]) -> dict[str, float | None]:
    """Mean of each CSV metric and of IoU over the images (NaNs, e.g. MSE of an empty unknown region,
    ignored); None for a metric no image has."""
    rows = [result.errors.as_dict() for result in results]
    means: dict[str, float | None] = {}
    for column in SUMMARY_COLUMNS:
        values = [row[column] for row in rows if row[column] is not None and not math.isnan(row[column])]
        means[column] = float(np.mean(values)) if values else None
    return means


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


def write_csv(path: str | os.PathLike, results: Iterable[ImageResult]) -> Path:
    """Write one row per image under the header `CSV_COLUMNS`, atomically; trimap errors empty without a trimap."""
    path = Path(path)
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for result in results:
                row = _row(result)
                writer.writerow([result.name, *(_format(row[column]) for column in METRIC_COLUMNS)])
    return path


def plot_errors(path: str | os.PathLike, results: Sequence[ImageResult]) -> Path:
    """Plot the per-image errors (one panel per metric present) to a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    rows = [_row(result) for result in results]
    columns = [column for column in METRIC_COLUMNS if rows and rows[0][column] is not None]
    figure, axes = plt.subplots(len(columns), 1, figsize=(max(6.0, 0.25 * len(rows)), 1.8 * len(columns) + 0.8),
                                sharex=True, squeeze=False)
    positions = np.arange(len(rows))
    for axis, column in zip(axes[:, 0], columns):
        values = np.array([row[column] for row in rows], dtype=float)
        axis.bar(positions, values, color="tab:blue")
        axis.axhline(np.nanmean(values), color="tab:red", linewidth=1, label="mean")
        axis.set_ylabel(column)
    axes[0, 0].legend(loc="upper right")
    axes[0, 0].set_title(f"Per-image errors ({len(rows)} images)")
    if len(rows) <= 60:  # names stay readable up to about this many
        axes[-1, 0].set_xticks(positions, [result.name for result in results], rotation=90, fontsize=7)
    else:
        axes[-1, 0].set_xlabel("image (sorted by file name)")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return path


def summary_table(results: Sequence[ImageResult], failures: Sequence[str] = ()) -> str:
    """A plain-text table of the mean errors, with their units."""
    units = {"sad": "x1000, unknown region", "mse": "unknown region", "grad": "x1000, unknown region",
             "conn": "x1000, unknown region", "sad_whole": "x1000, whole image", "mse_whole": "whole image",
             "mad_whole": "whole image", "iou": "alpha > 0.5, whole image"}
    lines = [f"{len(results)} image(s) evaluated, {len(failures)} failed", f"{'metric':<10} {'mean':>14}  unit"]
    for column, value in mean_errors(results).items():
        if value is not None:
            lines.append(f"{column:<10} {value:>14.6g}  {units[column]}")
    return "\n".join(lines)
