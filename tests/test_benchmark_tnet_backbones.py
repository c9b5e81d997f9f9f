"""benchmarks/tnet_backbones.py: its table and its arguments (the measuring runs models.profiling's
tested functions; a real run takes minutes, see docs/light_tnet.md)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import tnet_backbones  # noqa: E402


def test_the_table_gives_the_median_and_the_best_turn_of_each_runtime():
    rows = [{"backbone": "efficientnet_lite0", "params": 3080611, "gflops": 1.4812,
             "frozen": [30.0, 20.0, 25.0], "onnx": [12.0, 40.0, 11.0, 13.0]}]
    lines = tnet_backbones.table(rows, (256, 320)).splitlines()
    assert "GFLOPs at 256x320" in lines[0]
    assert lines[2] == "| efficientnet_lite0 | 3,080,611 | 1.48 | 25.0 ms (20.0) | 12.5 ms (11.0) |"


def test_sizes_that_are_not_multiples_of_32_are_refused(capsys):
    with pytest.raises(SystemExit):
        tnet_backbones.main(["--size", "32", "48"])
    assert "multiples of 32" in capsys.readouterr().err
