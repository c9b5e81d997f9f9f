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

import functools
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from shm import augment
from shm.augment import Augmentation
from shm.compositing import composite, fit_background_tf
from shm.io import IMAGE_EXTENSIONS, images_by_stem, list_images
from shm.geometry import DEFAULT_SIZE_MULTIPLE, network_size_tf
from shm.trimap import MIN_BAND_PX, SOFT_THRESHOLD, UNKNOWN, random_band_px, to_one_hot, trimap_from_alpha

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

    The whole file is decoded once (about 2 ms a photo; JPEGs at 1/8 scale, which still reads every
    byte), so a file truncated after its header is named here instead of stopping training in
    tf.data; the answer is cached per file version (path, size, modification time).
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    return _probe_image(path, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _probe_image(path: Path, size_bytes: int, modified_ns: int) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            image_format, size = image.format, image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1) if image_format == "JPEG" else 1
            if image_format == "JPEG":
                image.draft(image.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
            image.load()
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


def load_person(paths: dict) -> dict:
    """Decode a sample's photo, alpha and foreground colours (a dict of path strings, "" for none):
    partners resized to the photo; an unknown fg is the photo itself."""
    image = decode_rgb(tf.io.read_file(paths["image"]))
    hw = tf.shape(image)[:2]
    alpha = decode_alpha(tf.io.read_file(paths["alpha"]))
    alpha = tf.cond(tf.convert_to_tensor(paths["alpha_is_mask"]), lambda: match_size(alpha, hw, "nearest"),
                    lambda: match_size(alpha, hw, "bilinear"))
    fg_known = tf.not_equal(paths["fg"], "")
    return {"image": image, "alpha": alpha, "fg": _optional_colour(paths["fg"], image), "fg_known": fg_known}


def _optional_colour(path: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """The colours in `path` at the size of `image`, or `image` itself when there is no file."""
    return tf.cond(tf.equal(path, ""), lambda: tf.identity(image),
                   lambda: match_size(decode_rgb(tf.io.read_file(path)), tf.shape(image)[:2], "bilinear"))


def load_sample(paths: dict) -> dict:
    """Decode one sample's files (a dict of path strings, "" for none) into the dict of
    `shm.augment`: partners resized to the photo; unknown fg / bg are the photo itself."""
    sample = load_person(paths)
    has_fg_bg = tf.logical_and(sample["fg_known"], tf.not_equal(paths["bg"], ""))
    return {**sample, "bg": _optional_colour(paths["bg"], sample["image"]),
            "has_fg_bg": tf.cast(has_fg_bg, tf.float32)}


def load_background(path: tf.Tensor) -> tf.Tensor:
    """A background photo as float32 RGB (H, W, 3)."""
    return decode_rgb(tf.io.read_file(path))


# ----------------------------------------------------------------------------------------------
# Steps shared by the stages

def composite_onto(sample: dict, background: tf.Tensor, seed: tf.Tensor) -> dict:
    """Put the sample's foreground on a random window of `background` scaled to cover it
    (`shm.compositing.fit_background_tf`); fg and bg become known."""
    hw = augment.image_hw(sample)
    bg = fit_background_tf(background, hw[0], hw[1], tf.random.stateless_uniform([2], seed))
    return {**sample, "image": composite(sample["alpha"], sample["fg"], bg), "bg": bg,
            "has_fg_bg": tf.constant(1.0)}


def random_composite(sample: dict, background_paths: tf.Tensor, probability: float, seed: tf.Tensor) -> dict:
    """With `probability`, when the foreground is known, composite it onto a random background."""
    coin_seed, pick_seed, fit_seed = augment.split_seed(seed, 3)
    count = tf.shape(background_paths)[0]
    go = tf.logical_and(sample["fg_known"], tf.random.stateless_uniform([], coin_seed) < probability)
    pick = tf.random.stateless_uniform([], pick_seed, 0, count, dtype=tf.int32)
    return tf.cond(go, lambda: composite_onto(sample, load_background(background_paths[pick]), fit_seed),
                   lambda: dict(sample))


def group_view(sample: dict, first_box: tf.Tensor, partner_paths: dict, seed: tf.Tensor) -> dict:
    """Another sample's person (`partner_paths`) beside the view's own, in front of or behind it
    (`augment.place_beside`, `augment.add_person`): the targets become their union.

    `first_box`: the view's person in view pixels (`augment.box_in_view`). The partner is cut to the
    box of its alpha above `SOFT_THRESHOLD` (hair included); with no known fg its colours are the
    photo's (a cut-out by the mask, for stage 1's binary masks), and the view's fg is no longer
    known (no compositing onto backgrounds, no compositional loss).
    """
    place_seed, order_seed = augment.split_seed(seed, 2)
    partner = load_person(partner_paths)
    hw = augment.image_hw(partner)
    box = augment.person_box(partner["alpha"], SOFT_THRESHOLD)
    cut = tf.stack([tf.equal(box[0], 0), tf.equal(box[1], 0), tf.equal(box[2], hw[0]), tf.equal(box[3], hw[1])])
    layers = tf.concat([partner["alpha"], partner["fg"]], axis=-1)[box[0]:box[2], box[1]:box[3]]
    placed = augment.place_beside(layers, cut, first_box, augment.image_hw(sample), place_seed)
    in_front = tf.random.stateless_uniform([], order_seed) < 0.5
    grouped = augment.add_person(sample, placed[..., :1], placed[..., 1:], in_front)
    return {**grouped, "fg_known": tf.logical_and(sample["fg_known"], partner["fg_known"]),
            "has_fg_bg": sample["has_fg_bg"] * tf.cast(partner["fg_known"], tf.float32)}


def random_group_view(sample: dict, first_box: tf.Tensor, partner_paths: dict, probability: float,
                      seed: tf.Tensor) -> dict:
    """With `probability`, a group view (`group_view`); the partner's files are read only then."""
    coin_seed, view_seed = augment.split_seed(seed, 2)
    go = tf.random.stateless_uniform([], coin_seed) < probability
    return tf.cond(go, lambda: group_view(sample, first_box, partner_paths, view_seed), lambda: dict(sample))


def colour_jitter(sample: dict, augmentation: Augmentation, seed: tf.Tensor) -> dict:
    """The same random colour map on image, fg and bg (so the matting equation still holds)."""
    matrix, offset = augment.random_colour_transform(seed, augmentation.brightness, augmentation.contrast,
                                                     augmentation.saturation, augmentation.hue)
    return {**sample, **{key: augment.apply_colour_transform(sample[key], matrix, offset)
                         for key in ("image", "fg", "bg")}}


# The T-Net's target band, in pixels at the network's scale: fixed, so that the width is something the
# T-Net can learn from the photo (a random width per view taught it to call every edge "unknown"),
# and narrow: two pixels beyond the soft region on each side.
TNET_BAND_PX = 5
# Stage 2's loss covers the edges' surroundings: 7 px on each side at the network's scale.
RAW_ALPHA_BAND_PX = 15


def view_trimap(alpha: tf.Tensor, band_px: tf.Tensor | int) -> tf.Tensor:
    """Trimap classes of a training or validation view's alpha: `trimap_from_alpha` with
    `SOFT_THRESHOLD`, since a resized view's alpha is 1 - 1e-7 over much of a person (40-78 % of a
    CCP person at 320 px), which exact thresholds call unknown. Every target of the pipelines uses it."""
    return trimap_from_alpha(alpha, band_px, soft_threshold=SOFT_THRESHOLD)


def tnet_target(alpha: tf.Tensor) -> tf.Tensor:
    """The one-hot trimap the T-Net learns (and stage 2 validates with): `TNET_BAND_PX`, soft thresholds."""
    return to_one_hot(view_trimap(alpha, TNET_BAND_PX))


def perturbed_trimap(alpha: tf.Tensor, band_fraction: tuple[float, float], augmentation: Augmentation,
                     seed: tf.Tensor) -> tf.Tensor:
    """Stage 2's input trimap: probabilities like a T-Net's, not a clean one-hot trimap.

    A random band (`view_trimap`: its erosion / dilation of the true regions), then a box blur of a
    random odd size up to `augmentation.trimap_blur_px` and label smoothing of up to
    `augmentation.trimap_smoothing`: at inference the M-Net gets soft T-Net probabilities, and
    learns to use them only here.
    """
    band_seed, blur_seed, smooth_seed = augment.split_seed(seed, 3)
    hw = tf.shape(alpha)[:2]
    band = random_band_px(hw[0], hw[1], *band_fraction, seed=band_seed, minimum=MIN_BAND_PX)
    one_hot = to_one_hot(view_trimap(alpha, band))
    half = tf.random.stateless_uniform([], blur_seed, 0, augmentation.trimap_blur_px // 2 + 1, dtype=tf.int32)
    blurred = augment.box_blur(one_hot, 2 * half + 1)
    smoothing = tf.random.stateless_uniform([], smooth_seed, 0.0, augmentation.trimap_smoothing)
    return (1.0 - smoothing) * blurred + smoothing / 3.0


def raw_alpha_band(alpha: tf.Tensor) -> tf.Tensor:
    """Where stage 2's losses count (1.0, else 0.0): `RAW_ALPHA_BAND_PX` around the soft region."""
    band = view_trimap(alpha, RAW_ALPHA_BAND_PX) == UNKNOWN
    return tf.cast(band, tf.float32)


def finish(sample: dict, stage: str, trimap: tf.Tensor) -> dict:
    """The dict the pipelines yield (design.md, "Pipelines"); fg and bg are the image when not both known."""
    known = sample["has_fg_bg"] > 0
    element = {
        "image": sample["image"],
        "trimap": trimap,
        "alpha": sample["alpha"],
        "fg": tf.where(known, sample["fg"], sample["image"]),
        "bg": tf.where(known, sample["bg"], sample["image"]),
        "has_fg_bg": sample["has_fg_bg"],
    }
    if stage == "mnet":
        element["raw_alpha_band"] = raw_alpha_band(sample["alpha"])
    return {key: element[key] for key in STAGE_KEYS[stage]}


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


def validation_view(paths: dict, stage: str, working_size: int, multiple: int) -> dict:
    """The whole photo exactly as `shm.Matter` gives it to the network (`shm.geometry`), no randomness."""
    sample = load_sample(paths)
    sample = augment.resize_to_network(sample, network_size_tf(augment.image_hw(sample), working_size, multiple))
    return finish(sample, stage, tnet_target(sample["alpha"]))


# Group views draw their randomness from the element's seed folded with this, so that every other
# step's seed, and with `group_prob` 0 every view, stays what it was without them.
_GROUP_SEED = 1


def training_view(paths: dict, seed: tf.Tensor, stage: str, working_size: int, multiple: int,
                  augmentation: Augmentation, backgrounds: tf.Tensor, band_fraction: tuple[float, float],
                  partner_paths: dict | None = None) -> dict:
    """A random window of the photo (`augment.random_view_box`: the whole photo, a zoom, another
    aspect, or a head-and-shoulders / half-body framing) seen at the size inference would see such
    a photo at, then with `partner_paths` perhaps a group view (`random_group_view`), then flip,
    compositing onto person-free backgrounds and colour jitter."""
    box_seed, view_seed, trimap_seed = augment.split_seed(seed, 3)
    sample = load_sample(paths)
    top, left, height, width = augment.random_view_box(augment.image_hw(sample), sample["alpha"], augmentation,
                                                       box_seed)
    photo_box = augment.person_box(sample["alpha"], SOFT_THRESHOLD) if partner_paths is not None else None
    sample = augment.crop(sample, top, left, height, width)
    view_hw = network_size_tf(tf.stack([height, width]), working_size, multiple)
    sample = augment.resize_to_network(sample, view_hw)
    if partner_paths is not None:
        first_box = augment.box_in_view(photo_box, top, left, height, width, view_hw)
        group_seed = tf.random.experimental.stateless_fold_in(seed, _GROUP_SEED)
        sample = random_group_view(sample, first_box, partner_paths, augmentation.group_prob, group_seed)
    sample = _augment_view(sample, augmentation, backgrounds, view_seed)
    trimap = (perturbed_trimap(sample["alpha"], band_fraction, augmentation, trimap_seed) if stage == "mnet"
              else tnet_target(sample["alpha"]))
    return finish(sample, stage, trimap)


# ----------------------------------------------------------------------------------------------
# Pipelines

STAGE_KEYS = {
    "tnet": ("image", "trimap"),
    "mnet": ("image", "trimap", "alpha", "fg", "bg", "has_fg_bg", "raw_alpha_band"),
    "shm": ("image", "trimap", "alpha", "fg", "bg", "has_fg_bg"),
}
ALL_KEYS = STAGE_KEYS["shm"]


@dataclass(frozen=True)
class Source:
    """The samples of one data folder and how often training draws them, relative to the others'
    (e.g. 0.5 for pseudo-labelled photos: each is seen half as often as a hand-labelled one)."""

    samples: Sequence[Sample]
    weight: float = 1.0


def as_sources(samples: Sequence[Sample] | Sequence[Source]) -> list[Source]:
    """A list of `Source`s from either sources or plain samples (one source of weight 1)."""
    if samples and all(isinstance(item, Source) for item in samples):
        return list(samples)
    return [Source(samples)]


def _path_table(samples: Sequence[Sample]) -> dict[str, list]:
    return {
        "image": [str(s.image) for s in samples],
        "alpha": [str(s.alpha) for s in samples],
        "alpha_is_mask": [s.alpha_is_mask for s in samples],
        "fg": [str(s.fg) if s.fg else "" for s in samples],
        "bg": [str(s.bg) if s.bg else "" for s in samples],
    }


def _background_pool(backgrounds_dir: str | os.PathLike | None) -> tf.Tensor:
    # Only photos without people: other samples' estimated backgrounds hold a ghost of the removed person.
    pool = [str(p) for p in list_backgrounds(backgrounds_dir)] if backgrounds_dir is not None else []
    return tf.constant(pool, dtype=tf.string, shape=[len(pool)])


def _weighted_paths(sources: list[Source], seed: int) -> tf.data.Dataset:
    """An endless stream of sample paths: each source reshuffled every pass, drawn in proportion
    to its weight times its size."""
    streams = [tf.data.Dataset.from_tensor_slices(_path_table(source.samples))
               .shuffle(len(source.samples), seed=seed + index, reshuffle_each_iteration=True).repeat()
               for index, source in enumerate(sources)]
    if len(streams) == 1:
        return streams[0]
    total = sum(source.weight * len(source.samples) for source in sources)
    return tf.data.Dataset.sample_from_datasets(
        streams, weights=[source.weight * len(source.samples) / total for source in sources], seed=seed,
        rerandomize_each_iteration=True)


def partner_sources(sources: list[Source], stage: str) -> list[Source]:
    """The samples group views take their second person from: in stages 2 and 3 only those with
    known foreground colours (a cut-out by the alpha would teach the M-Net the old background's
    fringe as foreground); in stage 1 every sample (its trimap's band covers the fringe)."""
    if stage == "tnet":
        return sources
    known = [Source([s for s in source.samples if s.fg is not None], source.weight) for source in sources]
    return [source for source in known if source.samples]


# The partner stream's shuffles are seeded apart from the first stream's: streams in step would
# pair every photo with itself.
_PARTNER_STREAM_SEED = 1_000_003


def _shape_key(element: dict) -> tf.Tensor:
    hw = tf.shape(element["image"], out_type=tf.int64)[:2]
    return hw[0] * 65536 + hw[1]


def make_dataset(stage: str, samples: Sequence[Sample] | Sequence[Source], working_size: int, batch_size: int, *,
                 training: bool = True, seed: int = 0, backgrounds_dir: str | os.PathLike | None = None,
                 augmentation: Augmentation = Augmentation(), band_fraction: tuple[float, float] = (0.01, 0.05),
                 multiple: int = DEFAULT_SIZE_MULTIPLE) -> tf.data.Dataset:
    """Batches of one stage (`"tnet"`, `"mnet"`, `"shm"`; keys `STAGE_KEYS[stage]`, design.md).

    Every view is seen at the size inference sees such a photo at (`shm.geometry`: longer side
    `working_size`, sides multiples of `multiple`), so batches group views of one shape. Training
    (endless; `samples` may be weighted `Source`s): random views (`training_view`) with the T-Net's
    fixed narrow-band trimap as target, or for stage 2 a perturbed input trimap (`perturbed_trimap`,
    random band of `band_fraction` of the shorter side) and `raw_alpha_band`; `augmentation.group_prob`
    of the views get a second person from a second stream of samples (`partner_sources`). Validation
    (`training=False`): each photo once, as `shm.Matter` gives it to the network.
    """
    if stage not in STAGE_KEYS:
        raise ValueError(f"stage must be one of {tuple(STAGE_KEYS)}, got {stage!r}")
    sources = as_sources(samples)
    count = sum(len(source.samples) for source in sources)
    if not count:
        raise DatasetError("no samples to make a dataset from")
    if training and count < batch_size:
        raise DatasetError(f"{count} samples cannot fill one training batch of {batch_size}")
    if training:
        backgrounds = _background_pool(backgrounds_dir)
        element_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        streams = (_weighted_paths(sources, seed), element_seeds)
        partners = partner_sources(sources, stage) if augmentation.group_prob > 0 else []
        if partners:
            streams += (_weighted_paths(partners, seed + _PARTNER_STREAM_SEED),)
        dataset = tf.data.Dataset.zip(*streams).map(
            lambda paths, element_seed, partner_paths=None: training_view(
                paths, element_seed, stage, working_size, multiple, augmentation, backgrounds, band_fraction,
                partner_paths),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        table = _path_table([sample for source in sources for sample in source.samples])
        dataset = tf.data.Dataset.from_tensor_slices(table).map(
            lambda paths: validation_view(paths, stage, working_size, multiple),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.group_by_window(
        key_func=_shape_key, window_size=batch_size,
        reduce_func=lambda key, window: window.batch(batch_size, drop_remainder=training))
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_tnet_dataset(samples, working_size: int, batch_size: int, **kwargs) -> tf.data.Dataset:
    """Stage 1 (T-Net): `make_dataset("tnet", ...)`: `{"image", "trimap"}` batches."""
    return make_dataset("tnet", samples, working_size, batch_size, **kwargs)


def make_mnet_dataset(samples, working_size: int, batch_size: int, **kwargs) -> tf.data.Dataset:
    """Stage 2 (M-Net): `make_dataset("mnet", ...)`, the input trimap perturbed when training."""
    return make_dataset("mnet", samples, working_size, batch_size, **kwargs)


def make_shm_dataset(samples, working_size: int, batch_size: int, **kwargs) -> tf.data.Dataset:
    """Stage 3 (end to end): `make_dataset("shm", ...)`."""
    return make_dataset("shm", samples, working_size, batch_size, **kwargs)
