"""shm.io: robust reading of photos and alphas, atomic writing, leftovers of killed runs."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from shm.io import (DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageReadError, atomic_folder, atomic_path, decode_image,
                    list_images,
                    read_alpha, read_image, set_max_pixels, sweep_stale_temporaries, write_png_atomic)


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 9, 3), dtype=np.uint8)


def test_rgb_png_round_trip(tmp_path, rgb):
    write_png_atomic(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb)


def test_exif_orientation_is_applied(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif, quality=100)
    assert read_image(tmp_path / "r.jpg").shape == (9, 12, 3)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16"])
def test_other_modes_become_rgb_uint8(tmp_path, rgb, mode):
    image = Image.fromarray(rgb)
    if mode == "I;16":
        image = Image.fromarray((rgb[..., 0].astype(np.uint16) * 257))
        suffix = ".png"
    else:
        image = image.convert(mode)
        suffix = ".jpg" if mode == "CMYK" else ".png"
    image.save(tmp_path / f"x{suffix}")
    out = read_image(tmp_path / f"x{suffix}")
    assert out.shape == (12, 9, 3) and out.dtype == np.uint8
    if mode == "I;16":
        np.testing.assert_array_equal(out[..., 0], rgb[..., 0])


def test_alpha_from_grey_rgba_and_16_bit(tmp_path):
    alpha = np.linspace(0, 255, 20, dtype=np.uint8).reshape(4, 5)
    Image.fromarray(alpha).save(tmp_path / "g.png")
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 3] = alpha
    Image.fromarray(rgba).save(tmp_path / "c.png")
    Image.fromarray(alpha.astype(np.uint16) * 257).save(tmp_path / "w.png")
    for name in ("g.png", "c.png", "w.png"):
        np.testing.assert_allclose(read_alpha(tmp_path / name), alpha / 255.0, atol=1e-6)


def test_bad_files_name_the_file(tmp_path, rgb):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(rgb).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:100])
    for name, reason in [("empty.png", "empty"), ("text.png", "not an image"),
                         ("cut.jpg", "truncated"), ("missing.png", "no such file")]:
        with pytest.raises(ImageReadError, match=reason) as error:
            read_image(tmp_path / name)
        assert name in str(error.value)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_list_images_filters_and_sorts(tmp_path, rgb):
    for name in ("b.png", "a.JPG", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.png").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["a.JPG", "b.png", "c.png"]


def test_atomic_outputs_get_normal_permissions(tmp_path):
    import os
    umask = os.umask(0o022)
    try:
        path = write_png_atomic(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    finally:
        os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_images_by_stem_groups_sorted_and_skips_other_files(tmp_path):
    from shm.io import images_by_stem

    for name in ["b.png", "a.png", "a.jpg", "c.JPG", "notes.txt", ".hidden.png"]:
        (tmp_path / name).write_bytes(b"")
    groups = images_by_stem(tmp_path)
    assert groups == {"a": [tmp_path / "a.jpg", tmp_path / "a.png"], "b": [tmp_path / "b.png"], "c": [tmp_path / "c.JPG"]}


def test_a_pixel_bomb_is_called_too_large_not_corrupt(tmp_path):
    # A valid PNG header of 30000x30000 pixels and no pixel data: refused before decoding.
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(ImageReadError, match=r"bomb.png: 900 MP, over the limit of 64 MP \(--max-pixels raises it"):
        read_image(tmp_path / "bomb.png")


def test_heic_photos_and_encoded_bytes_are_read(tmp_path):
    rows, columns = np.mgrid[0:16, 0:24]
    smooth = np.dstack([rows * 12, columns * 8, np.full_like(rows, 128)]).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "phone.heic", quality=100)
    assert ".heic" in IMAGE_EXTENSIONS and list_images(tmp_path) == [tmp_path / "phone.heic"]
    photo = read_image(tmp_path / "phone.heic")
    assert photo.shape == smooth.shape and np.abs(photo.astype(int) - smooth).mean() < 4  # lossy
    np.testing.assert_array_equal(decode_image((tmp_path / "phone.heic").read_bytes(), "<stdin>"), photo)
    with pytest.raises(ImageReadError, match="<stdin>: not an image file"):
        decode_image(b"plain text", "<stdin>")
    with pytest.raises(ImageReadError, match="<stdin>: empty file"):
        decode_image(b"", "<stdin>")


def test_atomic_folder_replaces_only_on_success(tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as temporary:
            (temporary / "new.png").write_bytes(b"new")
            raise RuntimeError("failed half-way")
    assert [path.name for path in tmp_path.iterdir()] == ["frames"] and (target / "old.png").exists()
    with atomic_folder(target) as temporary:
        (temporary / "new.png").write_bytes(b"new")
    assert [path.name for path in target.iterdir()] == ["new.png"]
    assert [path.name for path in tmp_path.iterdir()] == ["frames"]


def test_animated_and_multi_page_images_are_refused_not_cut_to_a_frame(tmp_path, rgb):
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    for name in ["anim.gif", "pages.tiff", "anim.png"]:
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
        with pytest.raises(ImageReadError, match=f"{name}: an animated or multi-page .* \\(2 frames\\)"):
            read_image(tmp_path / name)
    frames[0].save(tmp_path / "still.gif")
    assert read_image(tmp_path / "still.gif").shape == rgb.shape


def dead_pid() -> int:
    """The id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_sweep_removes_temporaries_of_ended_processes_only(tmp_path):
    dead, alive = dead_pid(), os.getpid()
    stale = [tmp_path / f".a.{dead}.abcd1234.tmp.png", tmp_path / f".resume.weights.{dead}.x_y_z123.tmp.weights.h5"]
    (tmp_path / f".m_savedmodel.{dead}.abcdefgh.tmp").mkdir()
    (tmp_path / f".m_savedmodel.{dead}.abcdefgh.tmp" / "saved_model.pb").write_bytes(b"half")
    live = tmp_path / f".b.{alive}.abcd1234.tmp.png"  # a concurrent run is writing it
    others = [tmp_path / ".hidden.png", tmp_path / "a.png", tmp_path / ".shm_inference.json"]
    for path in [*stale, live, *others]:
        path.write_bytes(b"x")
    removed = sweep_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([*stale, tmp_path / f".m_savedmodel.{dead}.abcdefgh.tmp"])
    assert sorted(tmp_path.iterdir()) == sorted([live, *others])


def test_sigterm_stops_a_write_like_ctrl_c_and_leaves_no_temporary(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[2])\n"
            "from shm.io import atomic_path, stop_on_sigterm_like_sigint\n"
            "stop_on_sigterm_like_sigint()\n"
            "with atomic_path(sys.argv[1]) as temporary:\n"
            "    temporary.write_text('half'); print('writing', flush=True); time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "out.txt"), str(Path(__file__).parents[1])],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "writing\n"
    assert len(list(tmp_path.iterdir())) == 1  # the temporary
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert process.returncode != 0 and list(tmp_path.iterdir()) == []


def test_images_over_the_pixel_limit_fail_before_decoding(tmp_path, rgb, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS <= 64_000_000
    Image.fromarray(rgb).save(tmp_path / "a.png")  # 9 x 12 = 108 pixels
    for limit in (100, 50):  # over the limit (Pillow's warning), over twice the limit (its error)
        set_max_pixels(limit)
        with pytest.raises(ImageReadError, match=f"a.png: 0.000108 MP, over the limit of {limit / 1e6:g} MP "
                                                  "\\(--max-pixels raises it"):
            read_image(tmp_path / "a.png")
    set_max_pixels(108)
    assert read_image(tmp_path / "a.png").shape == rgb.shape


def test_an_output_is_refused_only_when_it_is_an_input_under_another_path(tmp_path):
    from shm.io import check_no_input_overwritten

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    (inputs / "a.png").write_bytes(b"a")
    (tmp_path / "in_again").symlink_to(inputs)
    (outputs / "b.png").symlink_to(inputs / "a.png")  # a link left by an earlier run: replaced, not written through
    check_no_input_overwritten([outputs / "a.png", outputs / "b.png"], [inputs / "a.png"])
    with pytest.raises(ValueError, match=r"in_again/a\.png: output would overwrite an input file"):
        check_no_input_overwritten([outputs / "b.png", tmp_path / "in_again" / "a.png"], [inputs / "a.png"])
