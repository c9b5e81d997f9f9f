"""Matting data sets on disk and the `tf.data` pipelines of the three training stages.

Layout (files pair by stem: `image/42.jpg` with `alpha/42.png`):

    DATA/image/*   photos
    DATA/alpha/*   alpha mattes (or DATA/mask/* binary masks; alpha/ wins when both exist)
    DATA/fg/*      optional foreground colours of each photo
    DATA/bg/*      optional (estimated) background of each photo
    DATA/train.txt optional list file: one stem per line, '#' comments

    samples = discover_samples("DATA", list_file="DATA/train.txt")
    print(samples.summary())
    train = make_shm_dataset(samples, size=320, batch_size=8, seed=1, backgrounds_dir="backgrounds/")

Training reads files with `tf.io.decode_image`, so images must be JPEG, PNG, BMP, GIF or WebP and
stored upright (no EXIF rotation); `discover_samples` checks both and names any file that breaks
them. Each pipeline yields one dict per batch (see docs/design.md, "Pipelines").
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from shm import augment
from shm.augment import Augmentation
from shm.io import IMAGE_EXTENSIONS, images_by_stem, list_images
from shm.trimap import UNKNOWN, random_band_px, to_one_hot, trimap_from_alpha

# Formats `tf.io.decode_image` reads (Pillow's names for them).
TF_DECODABLE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
_EXIF_ORIENTATION_TAG = 0x0112


class DatasetError(ValueError):
    """A data set problem; the message names the file(s) and what is wrong."""


@dataclass(frozen=True)
class Sample:
    """One training sample: a photo, its alpha (or binary mask) and optional fg / bg colours."""

    name: str
    image: Path
    alpha: Path
    alpha_is_mask: bool
    fg: Path | None = None
    bg: Path | None = None


@dataclass
class SampleSet(Sequence[Sample]):
    """The samples found in a data folder, and what was skipped or will be resized."""

    root: Path
    samples: list[Sample]
    skipped: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def summary(self) -> str:
        with_fg_bg = sum(s.fg is not None and s.bg is not None for s in self.samples)
        return (f"{self.root}: {len(self.samples)} samples ({with_fg_bg} with fg and bg), "
                f"{len(self.skipped)} skipped, {len(self.resized)} partner files resized to their image")


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _index_by_stem(folder: Path) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """Image files of `folder` by stem, and the stems that several files share."""
    by_stem = images_by_stem(folder)
    unique = {stem: paths[0] for stem, paths in by_stem.items() if len(paths) == 1}
    return unique, {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}


def probe_image(path: Path) -> tuple[int, int]:
    """(width, height) of an image file tf.data can decode as stored; `DatasetError` otherwise.

    Reads the header only (fast), so a file truncated after its header still fails later, in tf.data.
    """
    try:
        with Image.open(path) as image:
            image_format, size = image.format, image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1) if image_format == "JPEG" else 1
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{path}: unreadable image ({error})") from None
    if image_format not in TF_DECODABLE_FORMATS:
        raise DatasetError(f"{path}: {image_format} cannot be decoded by tf.data; convert it to PNG")
    if orientation not in (0, 1):
        raise DatasetError(f"{path}: EXIF orientation {orientation} would be ignored by tf.data; "
                           "save the photo upright")
    return size


def _read_list_file(list_file: Path) -> list[str]:
    if not list_file.is_file():
        raise DatasetError(f"{list_file}: list file not found")
    names = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(Path(name).stem if Path(name).suffix.lower() in IMAGE_EXTENSIONS else name)
    return names


def discover_samples(data_dir: str | os.PathLike, list_file: str | os.PathLike | None = None,
                     skip_bad: bool = False) -> SampleSet:
    """Pair the files of a data folder by stem (layout in the module docstring).

    `list_file` (a path, or a name inside `data_dir`) restricts and orders the samples. A missing,
    ambiguous or unreadable partner raises `DatasetError` naming both files, or with
    `skip_bad=True` skips the sample (listed in `.skipped`). A partner whose size differs from its
    photo is resized in the pipeline (nearest for masks, bilinear otherwise) with a warning.
    """
    root = Path(data_dir)
    image_dir = root / "image"
    if not image_dir.is_dir():
        raise DatasetError(f"{root}: no image/ folder")
    target_dir = root / "alpha" if (root / "alpha").is_dir() else root / "mask"
    if not target_dir.is_dir():
        raise DatasetError(f"{root}: neither an alpha/ nor a mask/ folder")
    images, image_clashes = _index_by_stem(image_dir)
    # kind -> (folder, files by stem, clashing stems, required)
    partner_index = {target_dir.name: (target_dir, *_index_by_stem(target_dir), True)}
    for kind in ("fg", "bg"):
        if (root / kind).is_dir():
            partner_index[kind] = (root / kind, *_index_by_stem(root / kind), False)

    if list_file is None:
        names = sorted(set(images) | set(image_clashes), key=_natural_key)
    else:
        list_path = Path(list_file)
        names = _read_list_file(list_path if list_path.is_file() else root / list_path)

    result = SampleSet(root=root, samples=[])
    for name in names:
        try:
            image = _photo(name, image_dir, images, image_clashes)
            partners, resized = _partners(name, image, partner_index)
        except DatasetError as error:
            if not skip_bad:
                raise DatasetError(f"{error} (skip_bad=True skips such samples)") from None
            result.skipped.append(str(error))
            continue
        result.samples.append(Sample(name=name, image=image, alpha=partners[target_dir.name],
                                     alpha_is_mask=target_dir.name == "mask",
                                     fg=partners.get("fg"), bg=partners.get("bg")))
        result.resized.extend(resized)
    if result.resized:
        warnings.warn(f"{root}: {len(result.resized)} files differ in size from their photo and are resized "
                      f"(masks nearest, others bilinear), e.g. {result.resized[0]}", stacklevel=2)
    if not result.samples:
        raise DatasetError(f"{root}: no usable sample ({len(result.skipped)} skipped)")
    return result


def _photo(name: str, image_dir: Path, images: dict, clashes: dict) -> Path:
    if name in clashes:
        raise DatasetError(f"{image_dir}: several photos named {name!r}: "
                           + ", ".join(p.name for p in clashes[name]))
    if name not in images:
        raise DatasetError(f"{image_dir / name}.*: listed but no such photo")
    return images[name]


def _partners(name: str, image: Path, partner_index: dict) -> tuple[dict[str, Path], list[str]]:
    """The partner files of one photo by kind, and descriptions of those that need resizing."""
    image_size = probe_image(image)
    partners, resized = {}, []
    for kind, (folder, found, clashes, required) in partner_index.items():
        if name in clashes:
            raise DatasetError(f"{image}: several partners in {folder}: " + ", ".join(p.name for p in clashes[name]))
        if name not in found:
            if required:
                raise DatasetError(f"{image}: no partner {folder / name}.* found")
            continue
        try:
            size = probe_image(found[name])
        except DatasetError as error:
            raise DatasetError(f"{image}: its partner {error}") from None
        if size != image_size:
            resized.append(f"{found[name]} ({size[0]}x{size[1]}) -> {image.name} ({image_size[0]}x{image_size[1]})")
        partners[kind] = found[name]
    return partners, resized


def list_backgrounds(folder: str | os.PathLike) -> list[Path]:
    """Background photos of a folder that tf.data can decode; others are skipped with a warning."""
    usable = []
    for path in list_images(folder):
        try:
            probe_image(path)
        except DatasetError as error:
            warnings.warn(f"skipping background {error}", stacklevel=2)
            continue
        usable.append(path)
    return usable


# ----------------------------------------------------------------------------------------------
# Decoding (one sample's files -> float32 tensors)

def decode_rgb(data: tf.Tensor) -> tf.Tensor:
    """Encoded image bytes -> float32 RGB (H, W, 3) in [0, 1] (8- and 16-bit files alike)."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.float32)
    image.set_shape([None, None, 3])
    return image


def decode_alpha(data: tf.Tensor) -> tf.Tensor:
    """Encoded alpha / mask bytes -> float32 (H, W, 1) in [0, 1].

    Like `shm.io.read_alpha`: grey is the alpha itself, grey+alpha and RGBA give their alpha
    channel, RGB its first channel.
    """
    decoded = tf.io.decode_image(data, channels=0, expand_animations=False, dtype=tf.float32)
    channels = tf.shape(decoded)[-1]
    index = tf.where(tf.equal(channels % 2, 0), channels - 1, 0)
    alpha = decoded[..., index:index + 1]
    alpha.set_shape([None, None, 1])
    return alpha


def match_size(image: tf.Tensor, hw: tf.Tensor, method: str) -> tf.Tensor:
    """`image` resized to `hw` with `method` ("nearest" or "bilinear") unless it already has that size."""
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], hw))
    return tf.cond(same, lambda: tf.identity(image), lambda: tf.image.resize(image, hw, method=method))


def load_sample(paths: dict) -> dict:
    """Decode one sample's files (a dict of path strings, "" for none) into the dict of
    `shm.augment`: partners resized to the photo; unknown fg / bg are the photo itself."""
    image = decode_rgb(tf.io.read_file(paths["image"]))
    hw = tf.shape(image)[:2]
    alpha = decode_alpha(tf.io.read_file(paths["alpha"]))
    alpha = tf.cond(tf.convert_to_tensor(paths["alpha_is_mask"]), lambda: match_size(alpha, hw, "nearest"),
                    lambda: match_size(alpha, hw, "bilinear"))

    def optional_colour(path: tf.Tensor) -> tf.Tensor:
        return tf.cond(tf.equal(path, ""), lambda: tf.identity(image),
                       lambda: match_size(decode_rgb(tf.io.read_file(path)), hw, "bilinear"))

    fg_known = tf.not_equal(paths["fg"], "")
    has_fg_bg = tf.logical_and(fg_known, tf.not_equal(paths["bg"], ""))
    return {"image": image, "alpha": alpha, "fg": optional_colour(paths["fg"]),
            "bg": optional_colour(paths["bg"]), "fg_known": fg_known,
            "has_fg_bg": tf.cast(has_fg_bg, tf.float32)}


def load_background(path: tf.Tensor) -> tf.Tensor:
    """A background photo as float32 RGB (H, W, 3)."""
    return decode_rgb(tf.io.read_file(path))


# ----------------------------------------------------------------------------------------------
# Steps shared by the stages

def composite_onto(sample: dict, background: tf.Tensor, seed: tf.Tensor) -> dict:
    """Put the sample's foreground on `background` (fitted to the sample's size); fg and bg become known."""
    hw = sample["image"].shape[:2]
    bg = augment.fit_background(background, hw[0], hw[1], seed)
    bg.set_shape(sample["bg"].shape)
    return {**sample, "image": augment.composite(sample["alpha"], sample["fg"], bg), "bg": bg,
            "has_fg_bg": tf.constant(1.0)}


def random_composite(sample: dict, background_paths: tf.Tensor, probability: float, seed: tf.Tensor) -> dict:
    """With `probability`, when the foreground is known, composite it onto a random background."""
    coin_seed, pick_seed, fit_seed = augment.split_seed(seed, 3)
    count = tf.shape(background_paths)[0]
    go = tf.logical_and(sample["fg_known"], tf.random.stateless_uniform([], coin_seed) < probability)
    pick = tf.random.stateless_uniform([], pick_seed, 0, count, dtype=tf.int32)
    return tf.cond(go, lambda: composite_onto(sample, load_background(background_paths[pick]), fit_seed),
                   lambda: dict(sample))


def colour_jitter(sample: dict, augmentation: Augmentation, seed: tf.Tensor) -> dict:
    """The same random colour map on image, fg and bg (so the matting equation still holds)."""
    matrix, offset = augment.random_colour_transform(seed, augmentation.brightness, augmentation.contrast,
                                                     augmentation.saturation, augmentation.hue)
    return {**sample, **{key: augment.apply_colour_transform(sample[key], matrix, offset)
                         for key in ("image", "fg", "bg")}}


def finish(sample: dict, band: tf.Tensor) -> dict:
    """The dict the pipelines yield: ground-truth trimap (one-hot) from alpha with kernel `band`;
    fg and bg are the image when not both known."""
    known = sample["has_fg_bg"] > 0
    return {
        "image": sample["image"],
        "trimap": to_one_hot(trimap_from_alpha(sample["alpha"], band)),
        "alpha": sample["alpha"],
        "fg": tf.where(known, sample["fg"], sample["image"]),
        "bg": tf.where(known, sample["bg"], sample["image"]),
        "has_fg_bg": sample["has_fg_bg"],
    }


# A kernel of 3 px is the smallest band that gives a hard (binary) edge an unknown pixel on each side.
MIN_BAND_PX = 3


def band_px(height, width, band_fraction: tuple[float, float], seed) -> tf.Tensor:
    """Trimap kernel size: a random fraction of the shorter side in `band_fraction`, at least MIN_BAND_PX."""
    return tf.maximum(random_band_px(height, width, *band_fraction, seed=seed), MIN_BAND_PX)


def _augment_view(sample: dict, augmentation: Augmentation, backgrounds: tf.Tensor, seed: tf.Tensor) -> dict:
    """Flip, composite and colour steps, common to every training pipeline (after cropping)."""
    flip_seed, composite_seed, colour_seed = augment.split_seed(seed, 3)
    if augmentation.flip:
        sample = augment.random_flip(sample, flip_seed)
    if augmentation.composite_prob > 0 and backgrounds.shape[0]:
        sample = random_composite(sample, backgrounds, augmentation.composite_prob, composite_seed)
    if augmentation.brightness or augmentation.contrast or augmentation.saturation or augmentation.hue:
        sample = colour_jitter(sample, augmentation, colour_seed)
    return sample


def whole_view(paths: dict, size: int, band_fraction: tuple[float, float]) -> dict:
    """Validation element: the whole photo resized to size x size, band at the middle fraction."""
    sample = augment.resize(load_sample(paths), size, size)
    middle = sum(band_fraction) / 2
    return finish(sample, band_px(size, size, (middle, middle), seed=[0, 0]))


def random_whole_view(paths: dict, seed: tf.Tensor, size: int, augmentation: Augmentation,
                      backgrounds: tf.Tensor, band_fraction: tuple[float, float]) -> dict:
    """Training element of the T-Net and end-to-end stages: scale-jittered crop resized to size x size."""
    box_seed, view_seed, band_seed = augment.split_seed(seed, 3)
    sample = load_sample(paths)
    top, left, height, width = augment.random_scale_box(augment.image_hw(sample), augmentation.min_scale, box_seed)
    sample = augment.resize(augment.crop(sample, top, left, height, width), size, size)
    sample = _augment_view(sample, augmentation, backgrounds, view_seed)
    return finish(sample, band_px(size, size, band_fraction, band_seed))


def random_unknown_crop(paths: dict, seed: tf.Tensor, crop_sizes: tuple[int, ...], output_size: int,
                        augmentation: Augmentation, backgrounds: tf.Tensor,
                        band_fraction: tuple[float, float]) -> dict:
    """Training element of the M-Net stage: a square crop of a random size in `crop_sizes` (at most
    the photo's shorter side) centred on a pixel of the unknown band, resized to output_size."""
    band_seed, size_seed, box_seed, view_seed = augment.split_seed(seed, 4)
    sample = load_sample(paths)
    # Centres come from the band's core (soft pixels and hard edges), which every band contains: the
    # smallest kernel keeps this full-resolution morphology cheap.
    unknown = trimap_from_alpha(sample["alpha"], MIN_BAND_PX)[..., 0] == UNKNOWN
    side = tf.gather(tf.constant(crop_sizes, tf.int32),
                     tf.random.stateless_uniform([], size_seed, 0, len(crop_sizes), dtype=tf.int32))
    top, left, height, width = augment.unknown_centred_box(unknown, side, box_seed)
    sample = augment.resize(augment.crop(sample, top, left, height, width), output_size, output_size)
    sample = _augment_view(sample, augmentation, backgrounds, view_seed)
    return finish(sample, band_px(output_size, output_size, band_fraction, band_seed))


# ----------------------------------------------------------------------------------------------
# Pipelines

def _path_table(samples: Sequence[Sample]) -> dict[str, list]:
    return {
        "image": [str(s.image) for s in samples],
        "alpha": [str(s.alpha) for s in samples],
        "alpha_is_mask": [s.alpha_is_mask for s in samples],
        "fg": [str(s.fg) if s.fg else "" for s in samples],
        "bg": [str(s.bg) if s.bg else "" for s in samples],
    }


def _background_pool(samples: Sequence[Sample], backgrounds_dir: str | os.PathLike | None) -> tf.Tensor:
    pool = [str(s.bg) for s in samples if s.bg is not None]
    if backgrounds_dir is not None:
        pool += [str(p) for p in list_backgrounds(backgrounds_dir)]
    return tf.constant(pool, dtype=tf.string, shape=[len(pool)])


def _batched(samples: Sequence[Sample], batch_size: int, training: bool, seed: int,
             train_element: Callable, val_element: Callable, keys: tuple[str, ...]) -> tf.data.Dataset:
    if not samples:
        raise DatasetError("no samples to make a dataset from")
    if training and len(samples) < batch_size:
        raise DatasetError(f"{len(samples)} samples cannot fill one training batch of {batch_size}")
    dataset = tf.data.Dataset.from_tensor_slices(_path_table(samples))
    if training:
        dataset = dataset.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
        # One stateless seed per element, drawn after shuffling and anew on every iteration (epoch): a
        # sample gets new augmentations every epoch, and the whole stream is the same for the same `seed`.
        element_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, element_seeds).map(
            train_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        dataset = dataset.map(val_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.map(lambda element: {key: element[key] for key in keys})
    return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


ALL_KEYS = ("image", "trimap", "alpha", "fg", "bg", "has_fg_bg")


def make_tnet_dataset(samples: Sequence[Sample], size: int, batch_size: int, *, training: bool = True,
                      seed: int = 0, backgrounds_dir: str | os.PathLike | None = None,
                      augmentation: Augmentation = Augmentation(),
                      band_fraction: tuple[float, float] = (0.01, 0.05)) -> tf.data.Dataset:
    """Stage 1 (T-Net): batches of `{"image": (B,S,S,3), "trimap": (B,S,S,3) one-hot}`.

    Training: shuffled, random scale-jittered crop resized to `size`, flip, compositing onto
    backgrounds (other samples' bg/ and `backgrounds_dir`), colour jitter, trimap from alpha with a
    random band of `band_fraction` of `size`. Validation (`training=False`): the whole photo resized,
    the middle band, no randomness.
    """
    return _whole_view_dataset(samples, size, batch_size, training, seed, backgrounds_dir, augmentation,
                               band_fraction, ("image", "trimap"))


def make_shm_dataset(samples: Sequence[Sample], size: int, batch_size: int, *, training: bool = True,
                     seed: int = 0, backgrounds_dir: str | os.PathLike | None = None,
                     augmentation: Augmentation = Augmentation(),
                     band_fraction: tuple[float, float] = (0.01, 0.05)) -> tf.data.Dataset:
    """Stage 3 (end to end): the T-Net pipeline's views with every key of design.md
    (`image, trimap, alpha, fg, bg, has_fg_bg`) at the model's working size `size`."""
    return _whole_view_dataset(samples, size, batch_size, training, seed, backgrounds_dir, augmentation,
                               band_fraction, ALL_KEYS)


def _whole_view_dataset(samples, size, batch_size, training, seed, backgrounds_dir, augmentation,
                        band_fraction, keys) -> tf.data.Dataset:
    backgrounds = _background_pool(samples, backgrounds_dir)
    return _batched(
        samples, batch_size, training, seed,
        train_element=lambda paths, element_seed: random_whole_view(
            paths, element_seed, size, augmentation, backgrounds, band_fraction),
        val_element=lambda paths: whole_view(paths, size, band_fraction),
        keys=keys)


def make_mnet_dataset(samples: Sequence[Sample], batch_size: int, *, crop_sizes: tuple[int, ...] = (320, 480, 640),
                      output_size: int = 320, training: bool = True, seed: int = 0,
                      backgrounds_dir: str | os.PathLike | None = None,
                      augmentation: Augmentation = Augmentation(),
                      band_fraction: tuple[float, float] = (0.01, 0.05)) -> tf.data.Dataset:
    """Stage 2 (M-Net): batches of `image, trimap (ground truth, one-hot), alpha, fg, bg, has_fg_bg`
    at `output_size` (C in design.md).

    Training: a square crop of a random size in `crop_sizes` centred on an unknown pixel (Deep
    Image Matting), resized to `output_size`, then flip, compositing, colour jitter and a random
    band. Validation: the whole photo resized to `output_size`, no randomness.
    """
    backgrounds = _background_pool(samples, backgrounds_dir)
    return _batched(
        samples, batch_size, training, seed,
        train_element=lambda paths, element_seed: random_unknown_crop(
            paths, element_seed, tuple(crop_sizes), output_size, augmentation, backgrounds, band_fraction),
        val_element=lambda paths: whole_view(paths, output_size, band_fraction),
        keys=ALL_KEYS)
