"""benchmarks/validate_model.py: its figures come from the library's validation loop
(`shm.validation.predictions`), its side-by-side pictures and its table, on a tiny model (the
timing is the benchmark's own and not measured here)."""

import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import tiny_shm_exports  # noqa: E402
import validate_model  # noqa: E402
from shm.inference import Matter  # noqa: E402
from shm.io import read_alpha, read_image  # noqa: E402
from shm.metrics import matting_errors  # noqa: E402


def _folder(root: Path) -> Path:
    """Photos b, a, c (b's reference at half size, as the benchmark resizes it) with soft alphas in alpha_pred/."""
    rng = np.random.default_rng(0)
    for folder in ("image", "alpha_pred"):
        (root / folder).mkdir(parents=True)
    for name, size in (("b", (40, 56)), ("a", (48, 32)), ("c", (32, 32))):
        Image.fromarray(rng.integers(0, 255, (*size, 3), np.uint8)).save(root / "image" / f"{name}.png")
        alpha = rng.integers(0, 255, size if name != "b" else (20, 28), np.uint8)
        Image.fromarray(alpha).save(root / "alpha_pred" / f"{name}.png")
    return root


def _mean_figures(matter: Matter, data_dir) -> list[float]:
    """The table's figures computed here, photo by photo (references resized as the benchmark does)."""
    rows = []
    for name in "abc":
        image = read_image(data_dir / "image" / f"{name}.png")
        reference = read_alpha(data_dir / "alpha_pred" / f"{name}.png")
        if reference.shape != image.shape[:2]:
            reference = cv2.resize(reference, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        rows.append(matting_errors(matter.predict(image), reference).as_dict())
    return [np.mean([float(row[name]) for row in rows]) for name in validate_model.FIGURES]


def test_the_table_gives_the_mean_figures_and_the_first_photos_are_pictured(tmp_path, monkeypatch, capsys):
    data_dir = _folder(tmp_path / "data")
    weights = tiny_shm_exports.weights_path()
    monkeypatch.setattr(validate_model, "time_600x800", lambda matter: 0.05)
    status = validate_model.main(["--weights", str(weights), "--data-dir", str(data_dir), "--alpha-dir", "alpha_pred",
                                  "--side-by-side", "2", "--side-by-side-dir", str(tmp_path / "img"),
                                  "--side-by-side-prefix", "t"])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"3 photos of {data_dir} (reference: alpha_pred/)"
    assert lines[1] == "| sad_whole | mse_whole | mad_whole | iou |" and lines[-1].endswith("median 50 ms")

    printed = [float(cell) for cell in lines[3].strip("| ").split(" | ")]
    np.testing.assert_allclose(printed, _mean_figures(Matter.from_preset("lite", weights=weights), data_dir), atol=1e-4)
    assert sorted(path.name for path in (tmp_path / "img").iterdir()) == ["t_a.png", "t_b.png"]
    assert read_image(tmp_path / "img" / "t_b.png").shape == (360, 3 * round(56 * 360 / 40), 3)


def test_a_photo_without_reference_is_a_one_line_error(tmp_path, capsys):
    data_dir = _folder(tmp_path / "data")
    (data_dir / "alpha_pred" / "c.png").unlink()
    assert validate_model.main(["--data-dir", str(data_dir), "--alpha-dir", "alpha_pred"]) == 1
    assert capsys.readouterr().err == f"error: {data_dir}: 'c' has no photo or no alpha_pred/ file\n"


def test_working_size_sets_the_size_the_network_runs_at(tmp_path, monkeypatch, capsys):
    data_dir = _folder(tmp_path / "data")
    weights = tiny_shm_exports.weights_path()
    monkeypatch.setattr(validate_model, "time_600x800", lambda matter: 0.05)
    assert validate_model.main(["--weights", str(weights), "--data-dir", str(data_dir), "--alpha-dir", "alpha_pred",
                                "--working-size", "32"]) == 0
    printed = [float(cell) for cell in capsys.readouterr().out.strip().splitlines()[3].strip("| ").split(" | ")]
    at_32 = _mean_figures(Matter.from_preset("lite", weights=weights, working_size=32), data_dir)
    np.testing.assert_allclose(printed, at_32, atol=1e-4)
    assert not np.allclose(at_32, _mean_figures(Matter.from_preset("lite", weights=weights), data_dir), atol=1e-3)
