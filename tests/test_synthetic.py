import numpy as np
import pytest

from shm import io, synthetic


def test_sample_shapes_ranges_and_soft_alpha():
    sample = synthetic.synthetic_sample(64, seed=3)
    assert sample.alpha.shape == (64, 64)
    for name in ("image", "fg", "bg"):
        array = getattr(sample, name)
        assert array.shape == (64, 64, 3) and array.dtype == np.float32
        assert 0.0 <= array.min() and array.max() <= 1.0
    soft = (sample.alpha > 0.0) & (sample.alpha < 1.0)
    assert soft.sum() > 20, "anti-aliased edges and hair strands give fractional alpha"
    assert (sample.alpha == 1.0).sum() > 0.05 * 64 * 64, "a figure is drawn"
    assert (sample.alpha == 0.0).sum() > 0.2 * 64 * 64, "background is visible"


def test_image_is_the_composite_of_fg_and_bg():
    sample = synthetic.synthetic_sample(48, seed=(1, 2))
    alpha = sample.alpha[..., None]
    np.testing.assert_allclose(sample.image, alpha * sample.fg + (1.0 - alpha) * sample.bg, atol=1e-6)
    # The figure differs from the background, so compositing is not a no-op.
    assert np.abs(sample.fg - sample.bg)[sample.alpha == 1.0].mean() > 0.02


def test_same_seed_same_sample_other_seed_other_sample():
    first, again = synthetic.synthetic_sample(32, (0, 5)), synthetic.synthetic_sample(32, (0, 5))
    other = synthetic.synthetic_sample(32, (0, 6))
    for name in ("image", "alpha", "fg", "bg"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.alpha, other.alpha)


def test_rejects_tiny_size():
    with pytest.raises(ValueError, match="size"):
        synthetic.synthetic_sample(8)


def test_cli_writes_the_data_layout_reproducibly(tmp_path, capsys):
    assert synthetic.main(["--out", str(tmp_path / "a"), "--n", "3", "--size", "32", "--seed", "4"]) == 0
    assert "3 samples" in capsys.readouterr().out
    for kind in synthetic.KINDS:
        assert sorted(p.name for p in (tmp_path / "a" / kind).iterdir()) == ["00000.png", "00001.png", "00002.png"]
    # A larger set with the same seed begins with the same samples.
    assert synthetic.main(["--out", str(tmp_path / "b"), "--n", "4", "--size", "32", "--seed", "4"]) == 0
    for kind in synthetic.KINDS:
        np.testing.assert_array_equal(io.read_image(tmp_path / "a" / kind / "00002.png"),
                                      io.read_image(tmp_path / "b" / kind / "00002.png"))
    alpha = io.read_alpha(tmp_path / "a" / "alpha" / "00001.png")
    np.testing.assert_array_equal(alpha, np.round(synthetic.synthetic_sample(32, (4, 1)).alpha * 255) / 255)


def test_cli_rejects_zero_samples(tmp_path, capsys):
    assert synthetic.main(["--out", str(tmp_path), "--n", "0"]) == 2
    assert "n must be" in capsys.readouterr().err
