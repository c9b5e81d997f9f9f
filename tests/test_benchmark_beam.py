"""benchmarks/beam_throughput.py's parsing and page (its runs take minutes: docs/benchmarks.md)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import beam_throughput  # noqa: E402


def test_stage_times_come_from_both_commands_summary_lines():
    inference_line = ("200 processed, 0 skipped (outputs exist), 0 failed; per image/frame 0.133 s (network 0.030, "
                      "upsampling 0.017, foreground 0.036, writing 0.046); 28.1 s in all; outputs in out")
    beam_line = ("200 processed, 0 skipped (outputs exist), 0 failed; per photo: reading 0.004 s, then 0.131 s "
                 "(network 0.031, upsampling 0.018, foreground 0.037, writing 0.045); 41.2 s in all; outputs in out")
    assert beam_throughput.stage_seconds(inference_line) == {
        "network": 0.030, "upsampling": 0.017, "foreground": 0.036, "writing": 0.046}
    assert beam_throughput.stage_seconds(beam_line)["reading"] == 0.004


def test_alpha_difference_between_output_folders(tmp_path):
    for name, value in (("a", 10), ("b", 12)):
        (tmp_path / name).mkdir()
        Image.fromarray(np.full((4, 4), value, np.uint8)).save(tmp_path / name / "x_alpha.png")
    assert beam_throughput.max_alpha_difference(tmp_path / "a", tmp_path / "b") == 2
    (tmp_path / "b" / "y_alpha.png").write_bytes(b"")
    with pytest.raises(RuntimeError, match="not the same outputs"):
        beam_throughput.max_alpha_difference(tmp_path / "a", tmp_path / "b")


def test_section_has_every_command_and_the_cpu_time():
    rows = [{"command": label, "startup_s": 1.0, "wall_s": 30.0, "photos_per_s": 6.67, "peak_rss_mb": 200,
             "photos_per_s_after_startup": 6.9, "stages": {"network": 0.03}, "max_alpha_difference": 0}
            for label, _ in beam_throughput.COMMANDS]
    section = beam_throughput.render_section(rows, 0.125, {1: 0.033, 8: 0.041}, 200, (600, 800),
                                             "python benchmarks/beam_throughput.py", "a machine")
    assert section.startswith(beam_throughput.START_MARK) and section.endswith(beam_throughput.END_MARK)
    assert all(label in section for label, _ in beam_throughput.COMMANDS)
    assert "**0.125 s**" in section and "28,800 photos per vCPU-hour" in section
    assert "1: 0.0330 s, 8: 0.0410 s" in section
