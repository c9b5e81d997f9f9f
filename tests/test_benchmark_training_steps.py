"""benchmarks/training_steps.py: a tiny run end to end (one stage, two settings, one timed step in
processes of their own) and its summary; the timings themselves are not tested."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import training_steps  # noqa: E402


def test_summary_pools_the_rounds_and_compares_with_onednn_on():
    def row(setting, seconds):
        return {"stage": "tnet", "setting": setting, "seconds": seconds, "trainable_variables": 10,
                "view_sizes": ["320x224"]}

    rows = [row("onednn-on", [2.0, 2.2]), row("frozen-bn", [1.0, 1.2]), row("onednn-on", [1.8, 2.0]),
            row("frozen-bn", [1.1, 1.3])]
    on, frozen = training_steps.summarise(rows)
    assert (on["setting"], on["median_s"], on["round_medians"], on["steps"]) == ("onednn-on", 2.0, [2.1, 1.9], 4)
    assert on["relative"] == 1.0 and on["steps_per_s"] == 0.5
    assert frozen["median_s"] == pytest.approx(1.15) and frozen["relative"] == pytest.approx(0.575)
    (alone,) = training_steps.summarise([row("onednn-off", [3.0])])
    assert alone["relative"] is None  # no oneDNN-on figure to compare with


def test_tiny_run_trains_the_stage_with_the_setting_and_writes_its_section(tmp_path):
    from shm.training.stages import TrainOptions, build_trainer

    page = tmp_path / "page.md"
    page.write_text("# Benchmarks\n\nkept text\n")
    # One child (each traces a training step: the most of a minute on a loaded machine).
    status = training_steps.main(["--stages", "tnet", "--settings", "frozen-bn", "--rounds", "1", "--steps", "1",
                                  "--warmup", "1", "--batches", "1", "--batch-size", "2", "--working-size", "64",
                                  "--output", str(page)])
    assert status == 0
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nkept text\n") and "## Training steps" in text
    (row,) = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
              if line.startswith("| tnet |")]
    assert row[1] == "frozen-bn" and re.fullmatch(r"\d+x\d+", row[2]) and float(row[4]) > 0
    # The training flag reached the trainer: the backbone's BatchNorm scales and offsets are not trained.
    trained = build_trainer("tnet", TrainOptions(data_dir=[], out_dir=tmp_path, imagenet_weights="none", quiet=True))
    assert 0 < int(row[3]) < len(trained.trainable_variables)


def test_the_children_get_onednn_on_or_off_explicitly():
    assert training_steps.child_environment(True)["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert training_steps.child_environment(False)["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_bad_counts_are_refused(capsys):
    with pytest.raises(SystemExit):
        training_steps.main(["--steps", "0"])
    assert "--steps must be at least 1" in capsys.readouterr().err
