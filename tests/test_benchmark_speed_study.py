"""benchmarks/speed_study.py on a tiny light model: every path's row, its difference from the
reference path, and the page section it writes (the rest of the page kept)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import speed_study  # noqa: E402


def test_study_writes_one_row_per_path_with_small_differences(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text("# Benchmarks\n\nkept text\n")
    # Two paths (the reference and the eager call, which converts nothing): each runs in a process
    # of its own that builds the model.
    status = speed_study.main(["--networks", "lite/whole", "--paths", "keras-call", "--size", "32",
                               "--repeats", "1", "--warmup", "0", "--peak", "100", "--output", str(page)])
    assert status == 0
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nkept text\n") and speed_study.START_MARK in text
    rows = [line for line in text.splitlines() if line.startswith("| lite/whole")]
    assert [row.split(" | ")[2] for row in rows] == ["tf-function", "keras-call"]  # the reference first
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        median, gflops, percent, difference = float(cells[3]), float(cells[5]), cells[6], float(cells[7])
        assert median > 0 and gflops >= 0 and percent.endswith("%") and difference < 1e-4
    assert "Machine peak measured in the same run: 100 GFLOP/s" in text


def test_unknown_path_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        speed_study.main(["--paths", "gpu"])
    assert "invalid choice: 'gpu'" in capsys.readouterr().err
