import numpy as np
import pytest
from scipy import ndimage

from shm import alpha_from_mask as afm
from shm import io
from shm import trimap as tm

SIZE = 40


def _soft_disc_photo(size: int = SIZE, radius: float = 11.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A red disc with a 3 px soft edge over a blue-green background, and its binary mask (alpha > 0.5)."""
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2 + 0.5, xx - size / 2 + 0.5)
    true_alpha = np.clip((radius - distance) / 3.0 + 0.5, 0.0, 1.0)[..., None]
    rng = np.random.default_rng(seed)
    foreground = np.array([0.9, 0.2, 0.1]) + 0.03 * rng.standard_normal((size, size, 3))
    background = np.array([0.1, 0.5, 0.8]) + 0.03 * rng.standard_normal((size, size, 3))
    image = np.clip(true_alpha * foreground + (1 - true_alpha) * background, 0, 1)
    return (image * 255).round().astype(np.uint8), (true_alpha[..., 0] > 0.5).astype(np.float32)


@pytest.fixture(scope="module")
def result():
    image, mask = _soft_disc_photo()
    return image, mask, afm.soft_alpha_from_mask(image, mask, band_px=7)


def test_alpha_is_in_range_with_the_photo_shapes(result):
    image, _, soft = result
    assert soft.alpha.shape == (SIZE, SIZE) and soft.alpha.dtype == np.float32
    assert soft.trimap.shape == (SIZE, SIZE)
    assert soft.fg.shape == soft.bg.shape == (SIZE, SIZE, 3)
    assert 0.0 <= soft.alpha.min() and soft.alpha.max() <= 1.0
    for colours in (soft.fg, soft.bg):
        assert 0.0 <= colours.min() and colours.max() <= 1.0


def test_alpha_equals_the_mask_far_from_the_edge(result):
    _, mask, soft = result
    # The 7 px kernel reaches 3 px from the mask's edge; "far" is more than 4 px (in both axes) from it.
    square = np.ones((3, 3), bool)
    near = (ndimage.binary_dilation(mask > 0, square, iterations=4)
            & ~ndimage.binary_erosion(mask > 0, square, iterations=4, border_value=1))
    far = ~near
    np.testing.assert_array_equal(soft.alpha[far], mask[far])
    assert not np.any((soft.trimap == tm.UNKNOWN) & far)


def test_alpha_is_soft_inside_the_band_and_follows_the_photo(result):
    _, mask, soft = result
    band = soft.trimap == tm.UNKNOWN
    np.testing.assert_array_equal(band, afm.mask_trimap(mask, 7) == tm.UNKNOWN)
    soft_pixels = (soft.alpha > 0.05) & (soft.alpha < 0.95)
    assert soft_pixels.sum() >= 40, "the 3 px soft edge of the disc must give fractional alpha"
    assert np.all(band[soft_pixels]), "only the unknown band is solved"
    # Matting recovers the edge of the photo, not the binary mask's stair steps: alpha falls with distance.
    yy, xx = np.mgrid[:SIZE, :SIZE]
    distance = np.hypot(yy - SIZE / 2 + 0.5, xx - SIZE / 2 + 0.5)
    inner = band & (distance < 10.0)
    outer = band & (distance > 12.0)
    assert soft.alpha[inner].mean() > soft.alpha[outer].mean() + 0.5


def test_foreground_colour_is_recovered_where_alpha_is_high(result):
    _, _, soft = result
    inside = soft.alpha > 0.5
    np.testing.assert_allclose(soft.fg[inside].mean(0), [0.9, 0.2, 0.1], atol=0.08)
    np.testing.assert_allclose(soft.bg[soft.alpha < 0.5].mean(0), [0.1, 0.5, 0.8], atol=0.08)


def test_fit_mask_resizes_nearest_and_rejects_other_aspect_ratio():
    mask = np.zeros((10, 20), np.float32)
    mask[:, 10:] = 1.0
    fitted = afm.fit_mask(mask, 20, 40)
    assert fitted.shape == (20, 40) and set(np.unique(fitted)) == {0.0, 1.0}
    assert fitted[:, :20].max() == 0.0 and fitted[:, 20:].min() == 1.0
    with pytest.raises(afm.MaskError, match="aspect ratio"):
        afm.fit_mask(mask, 40, 40, name="m.png")


def test_cli_on_two_photos_with_a_resized_mask_and_a_broken_one(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    for stem, seed in (("a", 1), ("b", 2), ("c", 3)):
        image, mask = _soft_disc_photo(seed=seed)
        io.write_png_atomic(data / "image" / f"{stem}.png", image)
        if stem == "b":  # half-size mask: resized to its photo with nearest-neighbour interpolation
            mask = mask[::2, ::2]
        io.write_png_atomic(data / "mask" / f"{stem}.png", mask)
    (data / "mask" / "c.png").write_bytes(b"\x89PNG truncated")
    code = afm.main(["--data", str(data), "--out", str(out), "--kernel", "7"])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in (captured.out + captured.err).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "c.png" in errors[0]
    assert "3 photos: 2 done, 1 failed" in captured.out
    for kind in ("alpha", "trimap", "fg", "bg", "image"):
        assert sorted(p.name for p in (out / kind).iterdir()) == ["a.png", "b.png"]
    alpha_b = io.read_alpha(out / "alpha" / "b.png")
    assert alpha_b.shape == (SIZE, SIZE)
    assert ((alpha_b > 0.05) & (alpha_b < 0.95)).sum() > 20
    assert set(np.unique(io.read_alpha(out / "trimap" / "a.png") * 255).round()) == {0, 128, 255}
    assert (out / "image" / "a.png").resolve() == (data / "image" / "a.png").resolve()


def test_cli_refuses_output_equal_to_input(tmp_path, capsys):
    (tmp_path / "image").mkdir()
    (tmp_path / "mask").mkdir()
    assert afm.main(["--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "must differ" in capsys.readouterr().err


def test_cli_runs_again_into_its_own_output(tmp_path):
    """The image symlinks of a first run point at the inputs; a second run must replace them, not refuse."""
    data, out = tmp_path / "data", tmp_path / "out"
    image, mask = _soft_disc_photo(size=24, radius=6.0)
    io.write_png_atomic(data / "image" / "a.png", image)
    io.write_png_atomic(data / "mask" / "a.png", mask)
    assert afm.main(["--data", str(data), "--out", str(out), "--kernel", "5"]) == 0
    assert afm.main(["--data", str(data), "--out", str(out), "--kernel", "5"]) == 0
    assert (out / "image" / "a.png").resolve() == (data / "image" / "a.png").resolve()
    np.testing.assert_array_equal(io.read_image(data / "image" / "a.png"), image)
