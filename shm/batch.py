"""Run one function over many files with a progress bar, where one bad file never stops the others.

Used by the folder tools (`inference.py`, `generate_trimap.py`, `python -m shm.alpha_from_mask`):
each job either succeeds or raises a `ValueError` / `OSError` whose message names the file; that
message is printed as one line on stderr and collected, and the caller turns a non-empty list into a
non-zero exit status. Ctrl-C stops the run with `Interrupted`, which carries what was done so far,
so the tool prints its summary instead of a traceback.
"""

from __future__ import annotations

import multiprocessing
from typing import Callable, Iterable, Sequence, TypeVar

from shm.console import progress, report_error

Job = TypeVar("Job")
# The exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED_STATUS = 130


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `run_per_file`: `attempted` jobs had finished (`errors` among them)."""

    def __init__(self, attempted: int, errors: list[str]):
        super().__init__(f"interrupted after {attempted} files")
        self.attempted = attempted
        self.errors = errors


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
                 description: str = "files", initializer: Callable[[], None] | None = None,
                 quiet: bool = False) -> list[str]:
    """Call `function(job)` for every job (in `workers` processes if > 1); return the error messages.

    `function` must be a module-level callable (picklable) when `workers > 1`; `initializer` runs
    once in every process that does work (also in this one when `workers == 1`). The progress bar
    shows on a terminal unless `quiet`; errors always go to stderr. Raises `Interrupted` on Ctrl-C.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    errors: list[str] = []
    attempt = _Attempt(function)
    if workers == 1:
        if initializer is not None:
            initializer()
        outcomes: Iterable[str | None] = map(attempt, jobs)
        _collect(outcomes, len(jobs), description, errors, quiet)
    else:
        with multiprocessing.get_context("spawn").Pool(workers, initializer=initializer) as pool:
            _collect(pool.imap_unordered(attempt, jobs), len(jobs), description, errors, quiet)
    return errors


def _collect(outcomes: Iterable[str | None], total: int, description: str, errors: list[str],
             quiet: bool) -> None:
    attempted = 0
    try:
        for outcome in progress(outcomes, quiet, total=total, desc=description, unit="file"):
            attempted += 1
            if outcome is not None:
                report_error(outcome)
                errors.append(outcome)
    except KeyboardInterrupt:
        raise Interrupted(attempted, errors) from None


def summary_line(total: int, errors: Sequence[str], what: str = "files", interrupted: bool = False) -> str:
    """`"290 files: 289 done, 1 failed"`: the last line a folder tool prints (`interrupted`: Ctrl-C
    stopped it after `total` files)."""
    line = f"{total} {what}: {total - len(errors)} done, {len(errors)} failed"
    return f"interrupted: {line}" if interrupted else line
