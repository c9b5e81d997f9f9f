"""Person-free backgrounds cut from training photos (shm.backgrounds)."""
import itertools

import numpy as np
from PIL import Image

from shm import backgrounds


def brute_force_largest(free):
    best = 0
    height, width = free.shape
    for top, left in itertools.product(range(height), range(width)):
        for bottom, right in itertools.product(range(top + 1, height + 1), range(left + 1, width + 1)):
            if free[top:bottom, left:right].all():
                best = max(best, (bottom - top) * (right - left))
    return best


def test_largest_free_rectangle_is_the_largest_and_all_free():
    rng = np.random.default_rng(0)
    for _ in range(20):
        free = rng.random((6, 7)) < 0.7
        top, left, height, width = backgrounds.largest_free_rectangle(free)
        assert height * width == brute_force_largest(free)
        assert free[top:top + height, left:left + width].all()
    assert backgrounds.largest_free_rectangle(np.zeros((3, 3), bool)) == (0, 0, 0, 0)


def test_person_free_region_keeps_its_distance_from_the_person():
    mask = np.zeros((400, 300), np.float32)
    mask[50:400, 100:160] = 1.0  # a person standing left of centre
    top, left, height, width = backgrounds.person_free_region(mask, margin=0.05)
    assert height > 300 and width > 100                 # the free right side
    region = np.zeros_like(mask, bool)
    region[top:top + height, left:left + width] = True
    rows, columns = np.nonzero(region)
    distance = np.min(np.abs(columns[:, None] - np.array([100, 159])[None]), axis=1)
    assert not (mask[region] > 0).any() and distance.min() >= 0.05 * 300 - 1


def test_cut_backgrounds_writes_only_large_enough_regions(tmp_path):
    data = tmp_path / "data"
    (data / "image").mkdir(parents=True)
    (data / "mask").mkdir()
    photo = np.random.default_rng(1).integers(0, 255, (200, 160, 3), np.uint8)
    wide, narrow = np.zeros((200, 160), np.uint8), np.zeros((200, 160), np.uint8)
    wide[:, :40] = 255     # a person at the left edge: a wide free region on the right
    narrow[:, 20:150] = 255  # a person filling the photo: nothing large enough
    for name, mask in (("wide", wide), ("narrow", narrow)):
        Image.fromarray(photo).save(data / "image" / f"{name}.png")
        Image.fromarray(mask).save(data / "mask" / f"{name}.png")
    written, total = backgrounds.cut_backgrounds(data, tmp_path / "out", min_side=64)
    assert (written, total) == (1, 2)
    crop = np.asarray(Image.open(tmp_path / "out" / "wide.jpg"))
    assert crop.shape[0] > 150 and 64 <= crop.shape[1] <= 120
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["wide.jpg"]  # no temporary file left


def test_an_input_folder_is_refused_as_the_output(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "image").mkdir(parents=True)
    (data / "mask").mkdir()
    for out in (data, data / "image", data / "mask"):
        assert backgrounds.main(["--data", str(data), "--out", str(out)]) == 2
        assert f"error: {out}: the output folder must differ from the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["image", "mask"]  # nothing written
