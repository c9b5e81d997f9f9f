"""Data set pairing and the tf.data pipelines of shm.data, on tiny PNGs written to tmp dirs."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from shm import data
from shm.augment import Augmentation
from shm.data import DatasetError, discover_samples

HEIGHT, WIDTH = 40, 48
NO_COLOUR = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


def _alpha(height=HEIGHT, width=WIDTH, shift=0):
    """A disc with a soft rim: alpha 1 inside, a ramp, 0 outside."""
    yy, xx = np.mgrid[:height, :width]
    distance = np.hypot(yy - height / 2, xx - width / 2 - shift)
    return np.clip((height / 3 - distance) / 4, 0, 1)


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.rint(np.asarray(array) * 255), 0, 255).astype(np.uint8)).save(path)


def _write_dataset(root, names=("1", "2", "10"), fg_bg=(), target="alpha"):
    rng = np.random.default_rng(0)
    for index, name in enumerate(names):
        alpha = _alpha(shift=index * 3)
        fg, bg = rng.random((HEIGHT, WIDTH, 3)), rng.random((HEIGHT, WIDTH, 3))
        _save(root / "image" / f"{name}.png", alpha[..., None] * fg + (1 - alpha[..., None]) * bg)
        _save(root / target / f"{name}.png", alpha if target == "alpha" else alpha > 0.5)
        if name in fg_bg:
            _save(root / "fg" / f"{name}.png", fg)
            _save(root / "bg" / f"{name}.png", bg)
    return root


def _first_batch(dataset):
    return {key: value.numpy() for key, value in next(iter(dataset)).items()}


# ---------------------------------------------------------------------------------------------
# Pairing

def test_pairs_by_stem_in_natural_order_with_optional_fg_bg(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, fg_bg=("2",)))
    assert [s.name for s in samples] == ["1", "2", "10"]
    assert samples[0].alpha == tmp_path / "alpha" / "1.png" and not samples[0].alpha_is_mask
    assert samples[0].fg is None and samples[0].bg is None
    assert samples[1].fg == tmp_path / "fg" / "2.png" and samples[1].bg == tmp_path / "bg" / "2.png"
    assert "3 samples (1 with fg and bg), 0 skipped" in samples.summary()


def test_masks_folder_and_list_file_order(tmp_path):
    _write_dataset(tmp_path, target="mask")
    (tmp_path / "train.txt").write_text("10.jpg\n# a comment\n\n1\n")
    samples = discover_samples(tmp_path, list_file="train.txt")
    assert [s.name for s in samples] == ["10", "1"]
    assert all(s.alpha_is_mask for s in samples)


def test_missing_partner_is_an_error_naming_both_paths_or_skipped(tmp_path):
    _write_dataset(tmp_path)
    (tmp_path / "alpha" / "2.png").unlink()
    with pytest.raises(DatasetError, match=r"image/2\.png: no partner .*alpha/2\.\*"):
        discover_samples(tmp_path)
    samples = discover_samples(tmp_path, skip_bad=True)
    assert [s.name for s in samples] == ["1", "10"]
    assert len(samples.skipped) == 1 and "1 skipped" in samples.summary()


def test_unreadable_partner_and_listed_missing_photo(tmp_path):
    _write_dataset(tmp_path)
    (tmp_path / "alpha" / "1.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"image/1\.png: its partner .*alpha/1\.png: unreadable"):
        discover_samples(tmp_path)
    (tmp_path / "list.txt").write_text("10\n404\n")
    with pytest.raises(DatasetError, match=r"image/404\.\*: listed but no such photo"):
        discover_samples(tmp_path, list_file=tmp_path / "list.txt")


def test_formats_tf_cannot_read_are_rejected(tmp_path):
    _write_dataset(tmp_path)
    Image.open(tmp_path / "image" / "1.png").save(tmp_path / "image" / "1.tiff")
    (tmp_path / "image" / "1.png").unlink()
    rotated = Image.open(tmp_path / "image" / "2.png").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(tmp_path / "image" / "2.jpg", exif=exif.tobytes())
    (tmp_path / "image" / "2.png").unlink()
    samples = discover_samples(tmp_path, skip_bad=True)
    assert [s.name for s in samples] == ["10"]
    assert any("TIFF cannot be decoded by tf.data" in problem for problem in samples.skipped)
    assert any("EXIF orientation 6" in problem for problem in samples.skipped)


def test_a_photo_truncated_after_its_header_is_named_at_discovery(tmp_path):
    _write_dataset(tmp_path)
    Image.open(tmp_path / "image" / "2.png").convert("RGB").save(tmp_path / "image" / "2.jpg", quality=95)
    (tmp_path / "image" / "2.png").unlink()
    jpeg = (tmp_path / "image" / "2.jpg").read_bytes()
    (tmp_path / "image" / "2.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    with pytest.raises(DatasetError, match=r"image/2\.jpg: unreadable image \(image file is truncated"):
        discover_samples(tmp_path)
    samples = discover_samples(tmp_path, skip_bad=True)
    assert [s.name for s in samples] == ["1", "10"] and "2.jpg" in samples.skipped[0]


def test_duplicate_stems_are_ambiguous(tmp_path):
    _write_dataset(tmp_path, names=("1", "2"))
    Image.open(tmp_path / "image" / "1.png").convert("RGB").save(tmp_path / "image" / "1.jpg")
    with pytest.raises(DatasetError, match="several photos named '1'"):
        discover_samples(tmp_path)


def test_size_mismatch_warns_and_the_pipeline_resizes_masks_nearest(tmp_path):
    _write_dataset(tmp_path, names=("1", "2"), target="mask")
    _save(tmp_path / "mask" / "1.png", _alpha(HEIGHT // 2, WIDTH // 2) > 0.5)
    with pytest.warns(UserWarning, match="1 files differ in size"):
        samples = discover_samples(tmp_path)
    assert len(samples.resized) == 1
    table = {key: values[0] for key, values in data._path_table(samples).items()}
    loaded = data.load_sample(table)
    assert loaded["alpha"].shape == (HEIGHT, WIDTH, 1)
    assert set(np.unique(loaded["alpha"].numpy())) == {0.0, 1.0}


def test_no_folders_no_samples(tmp_path):
    with pytest.raises(DatasetError, match="no image/ folder"):
        discover_samples(tmp_path)
    (tmp_path / "image").mkdir()
    with pytest.raises(DatasetError, match="neither an alpha/ nor a mask/ folder"):
        discover_samples(tmp_path)


# ---------------------------------------------------------------------------------------------
# Decoding

@pytest.mark.parametrize("mode, expected", [("L", 0.2), ("RGBA", 0.6), ("RGB", 0.2), ("I;16", 0.2)])
def test_decode_alpha_picks_the_channel_like_read_alpha(tmp_path, mode, expected):
    if mode == "I;16":
        image = Image.fromarray(np.full((3, 4), round(0.2 * 65535), np.uint16))
    else:
        image = Image.new(mode, (4, 3), {"L": 51, "RGBA": (51, 90, 200, 153), "RGB": (51, 90, 200)}[mode])
    image.save(tmp_path / "a.png")
    alpha = data.decode_alpha(tf.io.read_file(str(tmp_path / "a.png")))
    assert alpha.shape == (3, 4, 1)
    np.testing.assert_allclose(alpha.numpy(), expected, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Pipelines

SHAPES = {"image": 3, "trimap": 3, "alpha": 1, "fg": 3, "bg": 3}


def _check_batch(batch, size, keys):
    assert set(batch) == set(keys)
    for key in keys:
        assert batch[key].dtype == np.float32
        if key == "has_fg_bg":
            assert batch[key].shape == (2,)
        else:
            assert batch[key].shape == (2, size, size, SHAPES[key])
    np.testing.assert_allclose(batch["trimap"].sum(-1), 1.0)  # one-hot
    if "alpha" in keys:
        soft = (batch["alpha"][..., 0] > 0.01) & (batch["alpha"][..., 0] < 0.99)
        assert soft.any() and (batch["trimap"][..., 1][soft] == 1).all()
        assert (batch["trimap"][..., 2][batch["alpha"][..., 0] < 0.99] == 0).all()
        # fg and bg are the image wherever they are not known.
        unknown = batch["has_fg_bg"] == 0
        np.testing.assert_array_equal(batch["fg"][unknown], batch["image"][unknown])


@pytest.mark.parametrize("training", [True, False])
def test_pipeline_keys_shapes_dtypes(tmp_path, training):
    samples = discover_samples(_write_dataset(tmp_path, fg_bg=("1", "2")))
    tnet = data.make_tnet_dataset(samples, 32, 2, training=training, seed=1)
    _check_batch(_first_batch(tnet), 32, ("image", "trimap"))
    for dataset in (data.make_shm_dataset(samples, 32, 2, training=training, seed=1),
                    data.make_mnet_dataset(samples, 2, crop_sizes=(32, 48, 64), output_size=32,
                                           training=training, seed=1)):
        _check_batch(_first_batch(dataset), 32, data.ALL_KEYS)
    assert len(list(tnet)) == (1 if training else 2)  # training drops the incomplete batch


def test_mnet_crops_are_centred_on_the_unknown_band(tmp_path):
    # A small object in a large photo: a random crop would often miss its boundary.
    root = tmp_path / "d"
    alpha = np.zeros((96, 128))
    alpha[70:80, 100:112] = 1.0
    for name in ("a", "b"):
        _save(root / "image" / f"{name}.png", np.random.default_rng(1).random((96, 128, 3)))
        _save(root / "alpha" / f"{name}.png", alpha)
    samples = discover_samples(root)
    dataset = data.make_mnet_dataset(samples, 2, crop_sizes=(32,), output_size=32, seed=3)
    for batch in dataset.repeat(4):
        assert (batch["trimap"].numpy()[..., 1].reshape(2, -1).sum(1) > 0).all()


def test_same_seed_same_batches_other_seed_other_batches(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1", "2", "3", "4"), fg_bg=("1", "3")))

    def batches(seed):
        dataset = data.make_mnet_dataset(samples, 2, crop_sizes=(32, 48), output_size=32, seed=seed,
                                         backgrounds_dir=tmp_path / "bg")
        return [b["image"].numpy() for b in dataset.repeat(2)]

    first, again, other = batches(7), batches(7), batches(8)
    assert len(first) == 4
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    # Epochs differ (reshuffled, new augmentation).
    assert not np.array_equal(first[0], first[2]) or not np.array_equal(first[1], first[3])


def test_validation_is_the_whole_photo_without_randomness(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path))
    dataset = data.make_shm_dataset(samples, 24, 2, training=False)
    first, again = _first_batch(dataset), _first_batch(dataset)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    photo = np.asarray(Image.open(tmp_path / "image" / "1.png"), np.float32) / 255
    expected = tf.image.resize(photo, (24, 24)).numpy()
    np.testing.assert_allclose(first["image"][0], expected, atol=1e-5)


def test_compositing_puts_known_foregrounds_on_the_backgrounds_folder(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path / "d", names=("1", "2"), fg_bg=("1", "2")))
    _save(tmp_path / "backgrounds" / "green.png", np.tile([0.0, 1.0, 0.0], (30, 50, 1)))
    (tmp_path / "backgrounds" / "broken.png").write_bytes(b"")
    augmentation = Augmentation(flip=False, composite_prob=1.0, **NO_COLOUR)
    # Only the folder's green photo: the data set's own bg/ files are removed from the pool.
    samples = data.SampleSet(samples.root, [s.__class__(**{**s.__dict__, "bg": None}) for s in samples])
    with pytest.warns(UserWarning, match="skipping background .*broken.png"):
        dataset = data.make_shm_dataset(samples, 32, 2, seed=0, backgrounds_dir=tmp_path / "backgrounds",
                                        augmentation=augmentation)
    batch = _first_batch(dataset)
    np.testing.assert_array_equal(batch["has_fg_bg"], [1.0, 1.0])
    np.testing.assert_allclose(batch["bg"], np.broadcast_to([0.0, 1.0, 0.0], batch["bg"].shape), atol=1e-6)
    np.testing.assert_allclose(batch["image"], batch["alpha"] * batch["fg"] + (1 - batch["alpha"]) * batch["bg"],
                               atol=1e-6)


def test_colour_jitter_keeps_image_fg_bg_consistent(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1", "2"), fg_bg=("1", "2")))
    augmentation = Augmentation(composite_prob=1.0, brightness=0.02, contrast=0.05, saturation=0.05, hue=0.01)
    batch = _first_batch(data.make_shm_dataset(samples, 32, 2, seed=5, augmentation=augmentation))
    recomposed = batch["alpha"] * batch["fg"] + (1 - batch["alpha"]) * batch["bg"]
    inside = (batch["fg"] > 0.02).all(-1) & (batch["fg"] < 0.98).all(-1)  # away from clipping
    np.testing.assert_allclose(batch["image"][inside], recomposed[inside], atol=2e-2)


def test_training_needs_a_full_batch(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1",)))
    with pytest.raises(DatasetError, match="cannot fill one training batch of 2"):
        data.make_tnet_dataset(samples, 32, 2)
