import cv2
import numpy as np
import pytest
from PIL import Image

import generate_trimap
from shm import io
from shm import trimap as tm


def _disc_alpha(size: int, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.clip(radius + 1.5 - np.hypot(yy - size / 2, xx - size / 2), 0.0, 1.0).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    source = tmp_path / "alpha"
    io.write_png_atomic(source / "soft.png", _disc_alpha(40, 10.0))
    io.write_png_atomic(source / "mask.png", (_disc_alpha(30, 8.0) > 0.5).astype(np.float32))
    return source


def _expected_png(alpha: np.ndarray, band: int) -> np.ndarray:
    kernel = np.ones((band, band), np.uint8)
    classes = cv2.dilate((alpha > 0).astype(np.uint8), kernel) + cv2.erode((alpha >= 1).astype(np.uint8), kernel)
    return np.array(io.TRIMAP_PNG_VALUES, np.uint8)[classes]


def test_fixed_kernel_writes_png_trimaps_named_like_sources(folder, tmp_path, capsys):
    out = tmp_path / "trimap"
    assert generate_trimap.main(["--input", str(folder), "--output", str(out), "--kernel", "5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mask.png", "soft.png"]
    for name in ("soft.png", "mask.png"):
        written = np.asarray(Image.open(out / name))
        assert written.ndim == 2
        np.testing.assert_array_equal(written, _expected_png(io.read_alpha(folder / name), 5))
    assert "2 files: 2 done, 0 failed" in capsys.readouterr().out


def test_one_hot_png_has_background_uncertain_foreground_channels(folder, tmp_path):
    out = tmp_path / "onehot"
    assert generate_trimap.main(["--input", str(folder), "--output", str(out), "--kernel", "3", "--one-hot"]) == 0
    one_hot = io.read_image(out / "soft.png")
    assert set(np.unique(one_hot)) == {0, 255}
    np.testing.assert_array_equal(one_hot.sum(-1), 255)
    classes = np.searchsorted(io.TRIMAP_PNG_VALUES, _expected_png(io.read_alpha(folder / "soft.png"), 3))
    np.testing.assert_array_equal(one_hot.argmax(-1), classes)


def test_random_band_is_seeded_per_file_and_within_range(folder, tmp_path):
    band_fraction = (0.1, 0.3)
    bands = {tm.file_band_px("soft.png", 40, 40, band_fraction, seed) for seed in range(12)}
    assert len(bands) > 1 and all(4 <= band <= 12 for band in bands)
    for out in (tmp_path / "a", tmp_path / "b"):
        assert generate_trimap.main(["--input", str(folder), "--output", str(out), "--seed", "3",
                                     "--band-min", str(band_fraction[0]), "--band-max", str(band_fraction[1])]) == 0
    band = tm.file_band_px("soft.png", 40, 40, band_fraction, 3)
    np.testing.assert_array_equal(io.read_alpha(tmp_path / "a" / "soft.png"),
                                  _expected_png(io.read_alpha(folder / "soft.png"), band) / np.float32(255))
    np.testing.assert_array_equal(io.read_alpha(tmp_path / "a" / "soft.png"),
                                  io.read_alpha(tmp_path / "b" / "soft.png"))


def test_refuses_to_write_into_its_input_folder(folder, capsys):
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert generate_trimap.main(["--input", str(folder), "--output", str(folder / "."), "--kernel", "3"]) == 2
    assert "must differ" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_refuses_an_input_that_links_to_a_file_it_would_write(folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    kept = b"a file the output folder already holds"
    (out / "linked.png").write_bytes(kept)
    (folder / "linked.png").symlink_to(out / "linked.png")  # the input is the file out/linked.png
    assert generate_trimap.main(["--input", str(folder), "--output", str(out), "--kernel", "3"]) == 2
    assert "linked.png: output would overwrite an input file" in capsys.readouterr().err
    assert (out / "linked.png").read_bytes() == kept


def test_bad_file_is_one_line_and_the_others_are_written(folder, tmp_path, capsys):
    (folder / "broken.png").write_bytes(b"not a png at all")
    out = tmp_path / "trimap"
    assert generate_trimap.main(["--input", str(folder), "--output", str(out), "--kernel", "3"]) == 1
    captured = capsys.readouterr()
    error_lines = [line for line in captured.err.splitlines() + captured.out.splitlines() if "broken.png" in line]
    assert len(error_lines) == 1 and "not an image" in error_lines[0]
    assert "3 files: 2 done, 1 failed" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["mask.png", "soft.png"], "no partial or temporary files"


def test_sources_with_the_same_stem_are_an_error_not_an_overwrite(folder, tmp_path, capsys):
    cv2.imwrite(str(folder / "mask.jpg"), np.zeros((8, 8), np.uint8))
    assert generate_trimap.main(["--input", str(folder), "--output", str(tmp_path / "t"), "--kernel", "3"]) == 1
    assert "both would write" in capsys.readouterr().err


def test_rejects_bad_kernel(folder, tmp_path, capsys):
    assert generate_trimap.main(["--input", str(folder), "--output", str(tmp_path / "t"), "--kernel", "0"]) == 2
    assert "kernel must be" in capsys.readouterr().err
