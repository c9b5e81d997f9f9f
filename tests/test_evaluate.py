"""evaluate.py and shm.evaluation: pairing, CSV, plot, RGBA ground truth, and bad input."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evaluate
from shm.evaluation import CSV_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).parent / "fixtures" / "metrics" / "cases"
EXPECTED = {case["id"]: case for case in json.loads((CASES.parent / "expected.json").read_text())["cases"]}


def _folders(tmp_path):
    folders = [tmp_path / name for name in ("pred", "gt", "trimap")]
    for folder in folders:
        folder.mkdir()
    return folders


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _save(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def test_csv_header_values_and_plot_with_trimaps(tmp_path, capsys):
    pred_dir, gt_dir, trimap_dir = _folders(tmp_path)
    for case in ("10", "11"):  # the two smallest fixture cases
        shutil.copy(CASES / f"{case}_pred.png", pred_dir / f"{case}_alpha.png")
        shutil.copy(CASES / f"{case}_alpha.png", gt_dir / f"{case}.png")
        shutil.copy(CASES / f"{case}_trimap.png", trimap_dir / f"{case}.png")
    out = tmp_path / "out" / "errors.csv"
    status = evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--trimap", str(trimap_dir),
                            "--csv", str(out), "--no-progress"])
    assert status == 0
    rows = _read_csv(out)
    assert rows[0] == list(CSV_COLUMNS)
    assert [row[0] for row in rows[1:]] == ["10", "11"]
    for row in rows[1:]:
        values = dict(zip(CSV_COLUMNS[1:], map(float, row[1:])))
        for name in ("sad", "mse", "grad", "conn"):
            assert values[name] == pytest.approx(EXPECTED[row[0]][name], rel=1e-5, abs=1e-6)
        pred = np.asarray(Image.open(CASES / f"{row[0]}_pred.png"), dtype=np.float64) / 255
        gt = np.asarray(Image.open(CASES / f"{row[0]}_alpha.png"), dtype=np.float64) / 255
        assert values["sad_whole"] == pytest.approx(np.abs(pred - gt).sum() / 1000, rel=1e-6)
        assert values["mad_whole"] == pytest.approx(np.abs(pred - gt).mean(), rel=1e-6)
    plot = out.with_suffix(".png")
    assert plot.is_file() and Image.open(plot).format == "PNG"
    summary = capsys.readouterr().out
    assert "2 image(s) evaluated, 0 failed" in summary and "conn" in summary


def test_rgba_ground_truth_and_no_trimap(tmp_path):
    pred_dir, gt_dir, _ = _folders(tmp_path)
    alpha = np.array([[0, 255], [255, 51]], dtype=np.uint8)
    _save(pred_dir / "a.png", [[0, 255], [0, 51]])  # plain NAME.png pairs with NAME.png
    rgba = np.dstack([np.full((2, 2, 3), 90, dtype=np.uint8), alpha])  # colour must be ignored
    Image.fromarray(rgba, mode="RGBA").save(gt_dir / "a.png")
    out = tmp_path / "errors.csv"
    assert evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--csv", str(out), "--no-progress"]) == 0
    header, row = _read_csv(out)
    assert header == list(CSV_COLUMNS)
    assert row[:5] == ["a", "", "", "", ""]  # no trimap: DIM errors empty
    assert float(row[5]) == pytest.approx(1 / 1000)  # one pixel off by 1
    assert float(row[6]) == pytest.approx(0.25) and float(row[7]) == pytest.approx(0.25)
    assert out.with_suffix(".png").is_file()


def test_bad_inputs_are_reported_and_the_rest_completes(tmp_path, capsys):
    pred_dir, gt_dir, _ = _folders(tmp_path)
    good = np.zeros((4, 6), dtype=np.uint8)
    _save(pred_dir / "good_alpha.png", good)
    _save(gt_dir / "good.png", good)
    (pred_dir / "empty_alpha.png").write_bytes(b"")  # 0-byte prediction
    _save(gt_dir / "empty.png", good)
    _save(pred_dir / "broken.png", good)
    (gt_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # corrupt ground truth
    _save(pred_dir / "orphan.png", good)  # no ground-truth partner
    _save(pred_dir / "small.png", good[:3])
    _save(gt_dir / "small.png", good)  # mismatched sizes
    out = tmp_path / "errors.csv"
    status = evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--csv", str(out), "--no-progress"])
    assert status == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 4
    messages = {name: next(line for line in errors if name in line) for name in
                ("empty_alpha.png", "broken.png", "orphan.png", "small.png")}
    assert "0 bytes" in messages["empty_alpha.png"]
    assert "corrupt" in messages["broken.png"] or "not an image" in messages["broken.png"]
    assert "no ground truth" in messages["orphan.png"]
    assert "6x3" in messages["small.png"] and "6x4" in messages["small.png"]
    assert [row[0] for row in _read_csv(out)[1:]] == ["good"]


def test_missing_trimap_is_reported(tmp_path, capsys):
    pred_dir, gt_dir, trimap_dir = _folders(tmp_path)
    _save(pred_dir / "x.png", np.zeros((3, 3)))
    _save(gt_dir / "x.png", np.zeros((3, 3)))
    status = evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--trimap", str(trimap_dir),
                            "--no-progress"])
    assert status == 1
    assert "no trimap named x.*" in capsys.readouterr().err


def test_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert evaluate.main(["--pred", str(tmp_path / "nope"), "--gt", str(tmp_path), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == f"error: --pred {tmp_path / 'nope'}: not a folder"


def test_script_help_runs_without_tensorflow():
    code = ("import sys, runpy; sys.argv = ['evaluate.py', '--help']\n"
            "try:\n    runpy.run_path('evaluate.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--pred", "--gt", "--trimap", "--csv", "--no-progress", "--model", "--split", "--threads",
                 "--working-size", "--clamp"):
        assert flag in result.stdout
    words = " ".join(result.stdout.split())  # argparse wraps the help lines
    assert "required without --model)" in words and "required with --pred)" in words
    assert words.count("(default:") == 6 and "(none: the shipped model alone)" in words
    assert "python evaluate.py --pred" in result.stdout  # the docstring's example


def test_trimap_with_other_values_than_0_128_255_is_reported(tmp_path, capsys):
    pred_dir, gt_dir, trimap_dir = _folders(tmp_path)
    for name in ("classes", "ok"):
        _save(pred_dir / f"{name}.png", np.zeros((3, 3)))
        _save(gt_dir / f"{name}.png", np.zeros((3, 3)))
    _save(trimap_dir / "classes.png", [[0, 1, 2]] * 3)  # 0/1/2 class indices saved by mistake
    _save(trimap_dir / "ok.png", [[0, 128, 255]] * 3)
    out = tmp_path / "errors.csv"
    status = evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--trimap", str(trimap_dir),
                            "--csv", str(out), "--no-progress"])
    assert status == 1
    err = capsys.readouterr().err
    assert "classes.png: trimap values must be 0, 128 or 255, found [1, 2]" in err
    assert [row[0] for row in _read_csv(out)[1:]] == ["ok"]


def test_two_predictions_of_one_name_are_reported(tmp_path, capsys):
    pred_dir, gt_dir, _ = _folders(tmp_path)
    _save(pred_dir / "a.png", np.zeros((2, 2)))
    _save(pred_dir / "a_alpha.png", np.zeros((2, 2)))
    _save(gt_dir / "a.png", np.zeros((2, 2)))
    out = tmp_path / "errors.csv"
    assert evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--csv", str(out), "--no-progress"]) == 1
    assert "a_alpha.png: pairs with ground truth 'a'" in capsys.readouterr().err
    assert [row[0] for row in _read_csv(out)[1:]] == ["a"]


def test_outputs_never_land_in_an_input_folder(tmp_path, capsys):
    pred_dir, gt_dir, _ = _folders(tmp_path)
    _save(pred_dir / "errors.png", np.zeros((2, 2)))  # the plot would overwrite this prediction
    _save(gt_dir / "errors.png", np.zeros((2, 2)))
    before = (pred_dir / "errors.png").read_bytes()
    status = evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--csv", str(pred_dir / "errors.csv"),
                            "--no-progress"])
    assert status == 2
    assert "an output inside the input folder" in capsys.readouterr().err
    assert (pred_dir / "errors.png").read_bytes() == before
    assert sorted(path.name for path in pred_dir.iterdir()) == ["errors.png"]  # no CSV, no temporary file


def test_csv_is_written_atomically_without_leftovers(tmp_path):
    pred_dir, gt_dir, _ = _folders(tmp_path)
    _save(pred_dir / "a.png", np.zeros((2, 2)))
    _save(gt_dir / "a.png", np.zeros((2, 2)))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "errors.csv").write_text("old content\n")
    assert evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--csv", str(out_dir / "errors.csv"),
                          "--no-progress"]) == 0
    assert sorted(path.name for path in out_dir.iterdir()) == ["errors.csv", "errors.png"]
    assert _read_csv(out_dir / "errors.csv")[0] == list(CSV_COLUMNS)


def test_an_inference_output_folder_is_evaluated_by_its_alphas(tmp_path, capsys):
    pred_dir, gt_dir, _ = _folders(tmp_path)
    for name in ("a", "b"):
        _save(gt_dir / f"{name}.png", np.full((3, 4), 255))
        _save(pred_dir / f"{name}_alpha.png", np.full((3, 4), 255))
        for other in ("rgba", "composite", "foreground", "trimap"):  # inference.py's other outputs
            _save(pred_dir / f"{name}_{other}.png", np.zeros((3, 4, 3)))
    assert evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--no-progress"]) == 0
    text = capsys.readouterr()
    assert text.err == "" and text.out.startswith("2 image(s) evaluated, 0 failed")
