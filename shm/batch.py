"""Run one function over many files with a progress bar, where one bad file never stops the others.

Used by the folder tools (`generate_trimap.py`, `python -m shm.alpha_from_mask`): each job either
succeeds or raises a `ValueError` / `OSError` whose message names the file; that message is printed
as one line and collected, and the caller turns a non-empty list into a non-zero exit status.
"""

from __future__ import annotations

import multiprocessing
from typing import Callable, Iterable, Sequence, TypeVar

from tqdm import tqdm

Job = TypeVar("Job")


class _Attempt:
    """`function(job)` turned into "None, or the error message"; picklable for worker processes."""

    def __init__(self, function: Callable[[Job], object]):
        self.function = function

    def __call__(self, job: Job) -> str | None:
        try:
            self.function(job)
        except (ValueError, OSError) as error:
            return str(error)
        return None


def run_per_file(function: Callable[[Job], object], jobs: Sequence[Job], workers: int = 1,
                 description: str = "files", initializer: Callable[[], None] | None = None) -> list[str]:
    """Call `function(job)` for every job (in `workers` processes if > 1); return the error messages.

    `function` must be a module-level callable (picklable) when `workers > 1`; `initializer` runs
    once in every process that does work (also in this one when `workers == 1`).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    errors: list[str] = []
    attempt = _Attempt(function)
    if workers == 1:
        if initializer is not None:
            initializer()
        outcomes: Iterable[str | None] = map(attempt, jobs)
        _collect(outcomes, len(jobs), description, errors)
    else:
        with multiprocessing.get_context("spawn").Pool(workers, initializer=initializer) as pool:
            _collect(pool.imap_unordered(attempt, jobs), len(jobs), description, errors)
    return errors


def _collect(outcomes: Iterable[str | None], total: int, description: str, errors: list[str]) -> None:
    for outcome in tqdm(outcomes, total=total, desc=description, unit="file"):
        if outcome is not None:
            tqdm.write(f"error: {outcome}")
            errors.append(outcome)


def summary_line(total: int, errors: Sequence[str], what: str = "files") -> str:
    """`"290 files: 289 done, 1 failed"`: the last line a folder tool prints."""
    return f"{total} {what}: {total - len(errors)} done, {len(errors)} failed"
