"""Data set pairing and the tf.data pipelines of shm.data, on tiny PNGs written to tmp dirs."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from shm import data
from shm.augment import Augmentation
from shm.compositing import composite
from shm.data import DatasetError, discover_samples

HEIGHT, WIDTH = 40, 48
NO_COLOUR = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


def _alpha(height=HEIGHT, width=WIDTH, shift=0, radius=None):
    """A disc with a soft rim: alpha 1 inside, a ramp, 0 outside."""
    yy, xx = np.mgrid[:height, :width]
    distance = np.hypot(yy - height / 2, xx - width / 2 - shift)
    return np.clip(((radius or height / 3) - distance) / 4, 0, 1)


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.rint(np.asarray(array) * 255), 0, 255).astype(np.uint8)).save(path)


def _write_dataset(root, names=("1", "2", "10"), fg_bg=(), target="alpha", radius=None):
    rng = np.random.default_rng(0)
    for index, name in enumerate(names):
        alpha = _alpha(shift=index * 3, radius=radius)
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

SHAPES = {"image": 3, "trimap": 3, "alpha": 1, "fg": 3, "bg": 3, "raw_alpha_band": 1}
# A 40 x 48 photo with a working size of 96 is seen at its own size (never enlarged), 40 and 48
# rounded (half to even) to multiples of 32: 32 x 64.
WORKING_SIZE, NETWORK_HW = 96, (32, 64)
PLAIN = Augmentation(max_zoom=1.0, reframe_prob=0.0, framing_prob=0.0)


def _check_batch(batch, stage, hw=NETWORK_HW):
    assert tuple(batch) == data.STAGE_KEYS[stage]
    for key, value in batch.items():
        assert value.dtype == np.float32
        assert value.shape == ((2,) if key == "has_fg_bg" else (2, *hw, SHAPES[key]))
    np.testing.assert_allclose(batch["trimap"].sum(-1), 1.0, atol=1e-5)  # probabilities
    if stage != "tnet":
        # fg and bg are the image wherever they are not known.
        unknown = batch["has_fg_bg"] == 0
        np.testing.assert_array_equal(batch["fg"][unknown], batch["image"][unknown])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("stage", ["tnet", "mnet", "shm"])
def test_pipeline_keys_shapes_dtypes_at_the_inference_size(tmp_path, stage, training):
    samples = discover_samples(_write_dataset(tmp_path, fg_bg=("1", "2")))
    dataset = data.make_dataset(stage, samples, WORKING_SIZE, 2, training=training, seed=1, augmentation=PLAIN)
    _check_batch(_first_batch(dataset), stage)
    if not training:  # every photo once, the last batch incomplete
        assert [len(batch["image"]) for batch in dataset] == [2, 1]


@pytest.mark.parametrize("working_size", [WORKING_SIZE, 32])  # enlarging and shrinking the photo
def test_validation_view_is_the_network_input_of_matter(tmp_path, working_size):
    from shm.backends import Runner
    from shm.inference import Matter

    class Recorder(Runner):
        backend, input_size, seen = "recorder", None, []

        def _run(self, images):
            self.seen.append(images[0])
            return {"alpha": np.zeros((*images.shape[:3], 1)), "trimap": np.zeros((*images.shape[:3], 3))}

    samples = discover_samples(_write_dataset(tmp_path, names=("1",)))
    view = _first_batch(data.make_dataset("shm", samples, working_size, 1, training=False))["image"][0]
    photo = np.asarray(Image.open(tmp_path / "image" / "1.png"))
    Matter(Recorder(), working_size=working_size).predict(photo)
    matter_input = Recorder.seen[-1]
    assert view.shape == matter_input.shape == ((*NETWORK_HW, 3) if working_size == WORKING_SIZE else (32, 32, 3))
    # Both are the photo area-averaged and rounded to 8 bits; two implementations may round a sum
    # that falls on a tie differently.
    difference = np.abs(view - matter_input) * 255
    assert difference.max() <= 1.0 + 1e-3 and np.mean(difference > 0.5) < 0.01


def test_tnet_target_is_a_fixed_narrow_band_with_soft_thresholds():
    alpha = np.zeros((1, 40, 60, 1), np.float32)
    alpha[:, :, 30:] = 1.0
    alpha[:, :, :10] = 0.005  # estimation noise far from the person: still background
    trimap = data.tnet_target(tf.constant(alpha[0])).numpy()
    unknown_columns = np.flatnonzero(trimap[0, :, 1])
    np.testing.assert_array_equal(unknown_columns, np.arange(30 - data.TNET_BAND_PX // 2, 30 + data.TNET_BAND_PX // 2))
    assert (trimap[:, :10, 0] == 1).all() and (trimap[:, 33:, 2] == 1).all()


def test_stage_2_input_trimaps_are_perturbed_probabilities(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1", "2", "3", "4"), fg_bg=("1", "2", "3", "4")))
    dataset = data.make_dataset("mnet", samples, WORKING_SIZE, 2, seed=3, augmentation=PLAIN)
    batches = [batch for batch in dataset.take(6)]
    trimaps = np.concatenate([b["trimap"].numpy() for b in batches])
    assert not np.isin(trimaps, (0.0, 1.0)).all()            # not one-hot: blurred and smoothed
    unknown_share = (trimaps.argmax(-1) == 1).mean(axis=(1, 2))
    assert len(np.unique(np.round(unknown_share, 3))) > 3    # random bands
    band = np.concatenate([b["raw_alpha_band"].numpy() for b in batches])
    alpha = np.concatenate([b["alpha"].numpy() for b in batches])
    soft = (alpha > 0.01) & (alpha < 0.99)
    assert band[soft].min() == 1.0 and 0 < band.mean() < 1   # the loss band holds every soft pixel


def test_stage_2_trimaps_and_loss_band_ignore_resampling_residue():
    # An antialiased resize leaves 1 - 1e-7 inside a person (most of a CCP view): it is foreground.
    alpha = np.zeros((48, 60, 1), np.float32)
    alpha[:, 30:] = 1.0 - 1e-7
    alpha[:, :10] = 1e-7
    exact = Augmentation(trimap_blur_px=0, trimap_smoothing=0.0)
    for seed in range(4):
        trimap = data.perturbed_trimap(tf.constant(alpha), (0.05, 0.1), exact, tf.constant([seed, 0])).numpy()
        assert (trimap[:, :20, 0] == 1).all() and (trimap[:, 40:, 2] == 1).all()
    band = data.raw_alpha_band(tf.constant(alpha)).numpy()[..., 0]
    half = data.RAW_ALPHA_BAND_PX // 2
    np.testing.assert_array_equal(np.flatnonzero(band[0]), np.arange(30 - half, 30 + half))


def test_same_seed_same_batches_other_seed_other_batches(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1", "2", "3", "4"), fg_bg=("1", "3")))

    def batches(seed):
        dataset = data.make_dataset("mnet", samples, WORKING_SIZE, 2, seed=seed)
        return [b["image"].numpy() for b in dataset.take(4)]

    first, again, other = batches(7), batches(7), batches(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(first, other))


def test_several_folders_are_drawn_in_proportion_to_weight_times_size(tmp_path):
    small = discover_samples(_write_dataset(tmp_path / "small", names=("1", "2")))
    large = discover_samples(_write_dataset(tmp_path / "large", names=("1", "2", "3", "4")))
    sources = [data.Source(small, 3.0), data.Source(large, 1.0)]  # 3 * 2 : 1 * 4 = 60 % : 40 %
    paths = [element["image"].numpy().decode() for element in data._weighted_paths(sources, seed=0).take(2000)]
    share = np.mean(["/small/" in path for path in paths])
    assert 0.56 < share < 0.64
    batch = _first_batch(data.make_dataset("tnet", sources, WORKING_SIZE, 2, seed=0))
    assert batch["image"].shape[0] == 2


def test_compositing_uses_only_person_free_backgrounds(tmp_path):
    # Both samples have an estimated bg/ (a ghost of their person): never a compositing background.
    samples = discover_samples(_write_dataset(tmp_path / "d", names=("1", "2"), fg_bg=("1", "2")))
    _save(tmp_path / "backgrounds" / "green.png", np.tile([0.0, 1.0, 0.0], (30, 50, 1)))
    (tmp_path / "backgrounds" / "broken.png").write_bytes(b"")
    augmentation = Augmentation(flip=False, composite_prob=1.0, **NO_COLOUR)
    with pytest.warns(UserWarning, match="skipping background .*broken.png"):
        dataset = data.make_dataset("shm", samples, WORKING_SIZE, 2, seed=0,
                                    backgrounds_dir=tmp_path / "backgrounds", augmentation=augmentation)
    batch = _first_batch(dataset)
    np.testing.assert_array_equal(batch["has_fg_bg"], [1.0, 1.0])
    np.testing.assert_allclose(batch["bg"], np.broadcast_to([0.0, 1.0, 0.0], batch["bg"].shape), atol=1e-6)
    # The image is rounded to 8 bits like inference's input; the composite holds up to that.
    np.testing.assert_allclose(batch["image"], batch["alpha"] * batch["fg"] + (1 - batch["alpha"]) * batch["bg"],
                               atol=0.6 / 255)
    assert data._background_pool(None).shape == (0,)


def test_colour_jitter_keeps_image_fg_bg_consistent(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1", "2"), fg_bg=("1", "2")))
    _save(tmp_path / "backgrounds" / "grey.png", np.full((30, 50, 3), 0.4))
    augmentation = Augmentation(composite_prob=1.0, brightness=0.02, contrast=0.05, saturation=0.05, hue=0.01)
    batch = _first_batch(data.make_dataset("shm", samples, WORKING_SIZE, 2, seed=5, augmentation=augmentation,
                                           backgrounds_dir=tmp_path / "backgrounds"))
    recomposed = batch["alpha"] * batch["fg"] + (1 - batch["alpha"]) * batch["bg"]
    inside = (batch["fg"] > 0.02).all(-1) & (batch["fg"] < 0.98).all(-1)  # away from clipping
    np.testing.assert_allclose(batch["image"][inside], recomposed[inside], atol=2e-2)


def test_training_needs_a_full_batch(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1",)))
    with pytest.raises(DatasetError, match="cannot fill one training batch of 2"):
        data.make_tnet_dataset(samples, 32, 2)


# ---------------------------------------------------------------------------------------------
# Group views

GROUPS = Augmentation(group_prob=1.0, **NO_COLOUR)
SMALL = 8  # the radius of people small enough to leave room for a second one
NO_GROUPS = Augmentation(group_prob=0.0, **NO_COLOUR)


def _batches(samples, stage, augmentation, seed=4, count=4, **kwargs):
    dataset = data.make_dataset(stage, samples, WORKING_SIZE, 2, seed=seed, augmentation=augmentation, **kwargs)
    return [{key: value.numpy() for key, value in batch.items()} for batch in dataset.take(count)]


def _fingerprint(value):
    """Two numbers that move with any change of a batch entry: the channels weighted 1, 2, 3 summed,
    and that weighted by a ramp across the width."""
    weighted = value.astype(np.float64) * (1 + np.arange(value.shape[-1]))
    return weighted.sum(), (weighted * np.linspace(0, 1, value.shape[2])[:, None]).sum()


# Stage 2's first batches before group views existed (commit 12a9fc0, seed 11; made by
# `_pinned_batches`): with `group_prob` 0 every other step's randomness must stay as it was. The
# trimap and raw_alpha_band entries were made again when both took `SOFT_THRESHOLD` (session 6).
PINNED_BATCHES = [
    {"image": (6463.9402, 3237.9354), "trimap": (4134.7040, 2062.1640), "alpha": (997.2911, 496.0377),
     "fg": (6489.6901, 3256.9292), "bg": (6496.8358, 3254.4730), "raw_alpha_band": (1672.0000, 833.1935)},
    {"image": (5890.9238, 2935.5561), "trimap": (3450.8511, 1674.8965), "alpha": (562.2591, 254.9686),
     "fg": (5842.5184, 2909.4596), "bg": (5906.9441, 2941.2420), "raw_alpha_band": (1888.0000, 878.4839)},
    {"image": (6258.5944, 3091.0033), "trimap": (4199.0005, 2004.1706), "alpha": (1131.2708, 521.3990),
     "fg": (6275.5001, 3093.6387), "bg": (6290.8757, 3148.4386), "raw_alpha_band": (1644.0000, 786.1935)},
]


def _pinned_batches(root, augmentation):
    samples = discover_samples(_write_dataset(root / "d", names=("1", "2", "3", "4"), fg_bg=("1", "3")))
    _save(root / "backgrounds" / "b.png", np.random.default_rng(1).random((30, 50, 3)))
    return _batches(samples, "mnet", augmentation, seed=11, count=3, backgrounds_dir=root / "backgrounds")


def test_without_group_views_the_pipeline_is_what_it_was(tmp_path):
    # tf.data's seeds are combined with TensorFlow's global seed when one is set (other tests set
    # it): the pinned numbers are those of a process without one, as the training scripts run.
    tf.random.set_seed(None)
    batches = _pinned_batches(tmp_path, Augmentation(group_prob=0.0))
    for batch, pinned in zip(batches, PINNED_BATCHES):
        assert batch["image"].shape == (2, 32, 32, 3)
        for key, numbers in pinned.items():
            # An 8-bit tie rounded the other way on another CPU moves a sum by 1/255 * 3.
            np.testing.assert_allclose(_fingerprint(batch[key]), numbers, atol=0.05)
    # And group views do change it.
    grouped = _pinned_batches(tmp_path / "again", Augmentation(group_prob=1.0))
    assert all(g["alpha"].sum() > b["alpha"].sum() for g, b in zip(grouped, batches))


@pytest.mark.parametrize("stage", ["shm", "mnet"])
def test_every_group_view_holds_more_person_than_its_first_person(tmp_path, stage):
    samples = discover_samples(_write_dataset(tmp_path, names=("1", "2", "3", "4"), fg_bg=("1", "2", "3", "4"),
                                              radius=SMALL))
    alone, grouped = _batches(samples, stage, NO_GROUPS), _batches(samples, stage, GROUPS)
    for one, two in zip(alone, grouped):
        # The same views (the group's randomness is its own), each with a second person added.
        assert one["image"].shape == two["image"].shape
        assert (two["alpha"] >= one["alpha"] - 1e-6).all()
        assert (two["alpha"].sum(axis=(1, 2, 3)) > one["alpha"].sum(axis=(1, 2, 3)) + 5).all()


def test_stage_1_group_views_cut_the_second_person_out_by_its_mask(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1", "2", "3"), target="mask", radius=SMALL))  # no fg
    assert list(data.partner_sources(data.as_sources(samples), "tnet")[0].samples) == list(samples)
    assert data.partner_sources(data.as_sources(samples), "shm") == []
    alone, grouped = _batches(samples, "tnet", NO_GROUPS), _batches(samples, "tnet", GROUPS)
    for one, two in zip(alone, grouped):
        person = lambda batch: batch["trimap"][..., 1:].sum(axis=(1, 2, 3))  # noqa: E731 (unknown + foreground)
        assert (person(two) > person(one) + 5).all()
    # Stages 2 and 3 take no cut-outs: without known foregrounds they have no group views.
    for one, two in zip(_batches(samples, "shm", NO_GROUPS), _batches(samples, "shm", GROUPS)):
        np.testing.assert_array_equal(one["alpha"], two["alpha"])


def test_group_views_are_composite_consistent_with_and_without_a_new_background(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path / "d", names=("1", "2", "3"), fg_bg=("1", "2", "3")))
    _save(tmp_path / "backgrounds" / "b.png", np.random.default_rng(2).random((30, 50, 3)))
    for composite_prob in (0.0, 1.0):
        augmentation = Augmentation(group_prob=1.0, composite_prob=composite_prob, **NO_COLOUR)
        for batch in _batches(samples, "shm", augmentation, backgrounds_dir=tmp_path / "backgrounds"):
            assert (batch["has_fg_bg"] == 1).all()
            person = batch["alpha"][..., 0] > 0
            np.testing.assert_allclose(composite(batch["alpha"], batch["fg"], batch["bg"])[person],
                                       batch["image"][person], atol=1e-5)


def test_group_views_are_reproducible(tmp_path):
    samples = discover_samples(_write_dataset(tmp_path, names=("1", "2", "3", "4"), fg_bg=("1", "2", "3", "4")))
    first, again, other = (_batches(samples, "shm", Augmentation(group_prob=0.5), seed=seed) for seed in (7, 7, 8))
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(a["alpha"].shape != b["alpha"].shape or not np.array_equal(a["alpha"], b["alpha"])
               for a, b in zip(first, other))


def test_group_views_fit_any_partner_into_views_grouped_by_shape(tmp_path):
    # Partners from photos of other sizes and aspects than the view's, views of every aspect.
    rng = np.random.default_rng(3)
    for name, (height, width) in {"tall": (90, 40), "wide": (30, 100), "small": (20, 24)}.items():
        alpha = _alpha(height, width)
        _save(tmp_path / "image" / f"{name}.png", alpha[..., None] * rng.random((height, width, 3)))
        _save(tmp_path / "alpha" / f"{name}.png", alpha)
        _save(tmp_path / "fg" / f"{name}.png", rng.random((height, width, 3)))
        _save(tmp_path / "bg" / f"{name}.png", rng.random((height, width, 3)))
    samples = discover_samples(tmp_path)
    augmentation = Augmentation(group_prob=1.0, reframe_prob=1.0, framing_prob=0.3)
    shapes = set()
    for batch in _batches(samples, "shm", augmentation, count=8, multiple=8):
        hw = batch["image"].shape[1:3]
        assert all(value.shape[1:3] == hw for key, value in batch.items() if key != "has_fg_bg")
        assert hw[0] % 8 == 0 and hw[1] % 8 == 0
        shapes.add(hw)
    assert len(shapes) > 1
