"""The three training stages of SHM and the T-Net's trimap prediction, behind one set of options.

Stage 1 trains the T-Net on trimaps, stage 2 the M-Net on ground-truth trimaps, stage 3 the whole
model end to end from the weights of stages 1 and 2. The scripts `pretrain_tnet.py`,
`pretrain_mnet.py` and `combined_model.py` are argparse over `train_tnet`, `train_mnet`,
`train_shm` and `predict_trimaps`; `add_common_arguments` defines the flags they share.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from models.layers import Normalize
from models.mnet import build_mnet
from models.shm import build_shm, resolve_preset
from models.weights import load_ade20k_weights, load_hed_encoder
from shm import data
from shm.console import progress
from shm.io import ImageReadError, list_images, read_image, write_png_atomic
from shm.losses import LossWeights
from shm.training.callbacks import TrainingDiverged
from shm.training.checkpoints import load_weights_checked
from shm.training.distribute import STRATEGIES, make_strategy, set_mixed_precision
from shm.training.engine import FitSettings, StageTrainer, fit_stage
from shm.trimap import to_png_values

DEFAULT_LEARNING_RATES = {"tnet": 1e-3, "mnet": 1e-4, "shm": 1e-4}
DEFAULT_EPOCHS = {"tnet": 50, "mnet": 50, "shm": 20}
TNET_SIZES = {"lite": 320, "pspnet50": 473}
MNET_CROP_SIZE = 320


@dataclasses.dataclass
class TrainOptions:
    """Everything a stage needs; the fields are the flags of `add_common_arguments` and the stage's own."""

    data_dir: Path
    out_dir: Path
    preset: str = "lite"
    input_size: int | None = None
    batch_size: int = 4
    epochs: int | None = None
    lr: float | None = None
    final_lr_fraction: float = 0.01
    steps_per_epoch: int | None = None
    resume: bool = False
    strategy: str = "default"
    mixed_precision: bool = False
    list_file: str | None = None
    val_dir: Path | None = None
    val_fraction: float = 0.1
    seed: int = 0
    backgrounds_dir: Path | None = None
    alpha_weight: float = 0.5
    comp_weight: float = 0.5
    trimap_weight: float = 0.01
    # stage 1
    ade20k_weights: Path | None = None
    imagenet_weights: str | None = None
    # stage 2
    mnet_init: str | None = None
    crop_sizes: Sequence[int] = (320, 480, 640)
    # stage 3
    tnet_weights: Path | None = None
    mnet_weights: Path | None = None

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(alpha=self.alpha_weight, comp=self.comp_weight, trimap=self.trimap_weight)


def add_common_arguments(parser: argparse.ArgumentParser, stage: str) -> None:
    """The flags every stage shares; defaults that differ by stage are set from `stage`."""
    group = parser.add_argument_group("data")
    group.add_argument("--data-dir", type=Path, required=True,
                       help="data folder: image/, alpha/ or mask/, optional fg/ and bg/ (docs/design.md)")
    group.add_argument("--list-file", help="list of stems to train on (a path or a name inside --data-dir); "
                       "default: every photo")
    group.add_argument("--val-dir", type=Path,
                       help="a separate validation data folder (then --val-fraction is not used)")
    group.add_argument("--val-fraction", type=float, default=0.1,
                       help="fraction of --data-dir's samples held out for validation, chosen with --seed; "
                            "0 trains without validation (the best checkpoint then follows the training loss) "
                            "(default: %(default)s)")
    group.add_argument("--seed", type=int, default=0, help="seed of the split, shuffling and augmentation "
                       "(default: %(default)s)")
    group.add_argument("--backgrounds-dir", type=Path,
                       help="extra background photos to composite the people onto (default: only bg/)")

    group = parser.add_argument_group("model and optimisation")
    group.add_argument("--preset", choices=("lite", "pspnet50"), default="lite",
                       help="lite: MobileNetV2 T-Net and slim M-Net (CPU friendly); pspnet50: the paper's "
                            "(default: %(default)s)")
    size_help = {"tnet": "T-Net training size (default: 320 for lite, 473 for pspnet50)",
                 "mnet": f"M-Net crop size after resizing (default: {MNET_CROP_SIZE})",
                 "shm": "whole-model training size (default: the preset's working size, 320 lite / 512 pspnet50)"}
    group.add_argument("--input-size", type=int, help=size_help[stage])
    group.add_argument("--batch-size", type=int, default=4, help="global batch size, split over the devices "
                       "(default: %(default)s)")
    group.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS[stage],
                       help="total epochs, counting those already done when resuming (default: %(default)s)")
    group.add_argument("--steps-per-epoch", type=int,
                       help="training steps per epoch, the data repeating as needed (default: one pass)")
    group.add_argument("--lr", type=float, default=DEFAULT_LEARNING_RATES[stage],
                       help="Adam's initial learning rate; it decays along a cosine per epoch "
                            "(default: %(default)s)")
    group.add_argument("--final-lr-fraction", type=float, default=0.01,
                       help="the cosine ends at this fraction of --lr (default: %(default)s)")

    group = parser.add_argument_group("output and scale")
    group.add_argument("--out-dir", type=Path, required=True,
                       help="where checkpoints (best/last/resume), log.csv, curves.png and tensorboard/ go")
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --out-dir from its last completed epoch (weights, optimiser, "
                            "epoch); without it an --out-dir holding a run is refused")
    group.add_argument("--strategy", choices=STRATEGIES, default="default",
                       help="default: one device; mirrored: every local GPU; multiworker: several machines "
                            "with TF_CONFIG (docs/training.md) (default: %(default)s)")
    group.add_argument("--mixed-precision", action="store_true",
                       help="compute in float16 with float32 weights and losses (for GPUs with tensor cores)")


def add_loss_weight_arguments(parser: argparse.ArgumentParser, with_trimap: bool) -> None:
    group = parser.add_argument_group("loss weights")
    group.add_argument("--alpha-weight", type=float, default=0.5, help="weight of the alpha prediction loss "
                       "(default: %(default)s)")
    group.add_argument("--comp-weight", type=float, default=0.5, help="weight of the compositional loss "
                       "(default: %(default)s)")
    if with_trimap:
        group.add_argument("--trimap-weight", type=float, default=0.01, help="weight of the trimap "
                           "cross-entropy (default: %(default)s)")


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    fields = {field.name for field in dataclasses.fields(TrainOptions)}
    return TrainOptions(**{name: value for name, value in vars(args).items() if name in fields})


def run_cli(function: Callable, *arguments) -> int:
    """Run a stage; a known failure is one line on stderr and exit status 1, never a traceback.

    A function that returns a count of failed files (an int) exits 1 when it is not 0.
    """
    try:
        result = function(*arguments)
    except (ValueError, TrainingDiverged) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return int(bool(result)) if isinstance(result, int) else 0


# --------------------------------------------------------------------------------------------------
# data

def split_samples(options: TrainOptions) -> tuple[list, list | None]:
    """Training and validation samples: --val-dir, or a seeded --val-fraction of --data-dir."""
    samples = data.discover_samples(options.data_dir, options.list_file, skip_bad=True)
    print(samples.summary())
    for problem in samples.skipped:
        print(f"skipped: {problem}")
    train = list(samples)
    if options.val_dir is not None:
        val_samples = data.discover_samples(options.val_dir, skip_bad=True)
        print(f"validation: {val_samples.summary()}")
        return train, list(val_samples)
    if not 0.0 <= options.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {options.val_fraction}")
    held_out = max(1, round(len(train) * options.val_fraction)) if options.val_fraction > 0 else 0
    if held_out == 0:
        return train, None
    if held_out >= len(train):
        raise ValueError(f"{options.data_dir}: {len(train)} samples are too few to hold out {held_out} for validation")
    random.Random(options.seed).shuffle(train)
    return train[held_out:], train[:held_out]


def _datasets(options: TrainOptions, make: Callable) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    train_samples, val_samples = split_samples(options)
    train = make(train_samples, training=True)
    if options.steps_per_epoch:
        train = train.repeat()
    val = make(val_samples, training=False) if val_samples else None
    return train, val


def _fit_settings(options: TrainOptions, stage: str) -> FitSettings:
    return FitSettings(out_dir=options.out_dir,
                       epochs=options.epochs or DEFAULT_EPOCHS[stage],
                       learning_rate=options.lr or DEFAULT_LEARNING_RATES[stage],
                       resume=options.resume, final_lr_fraction=options.final_lr_fraction,
                       steps_per_epoch=options.steps_per_epoch, preset=options.preset)


def _strategy(options: TrainOptions) -> tf.distribute.Strategy:
    # The multi-worker strategy must exist before any other TF op, the dtype policy before any layer.
    strategy = make_strategy(options.strategy)
    set_mixed_precision(options.mixed_precision)
    return strategy


# --------------------------------------------------------------------------------------------------
# networks

def build_tnet_for_training(preset: str, input_size: int | None = None, ade20k_weights: Path | None = None,
                            imagenet_weights: str | None = None) -> tuple[keras.Model, keras.Model]:
    """(the network stage 1 trains on RGB [0, 1], the T-Net inside it whose weights are saved).

    PSPNet-50 takes keras-segmentation's preprocessed input, so a `Normalize` (the one the SHM model
    puts in front of it) comes first; the light T-Net normalises inside itself.
    `imagenet_weights`: for lite, the MobileNetV2 `.npz` (None: the default file; "none": random).
    """
    settings = resolve_preset(preset)
    kwargs = dict(settings["tnet_kwargs"])
    if preset == "lite":
        kwargs.update(input_size=input_size, backbone_weights=None if imagenet_weights == "none" else "imagenet")
        if imagenet_weights not in (None, "none"):
            kwargs["weights_path"] = imagenet_weights
    tnet = settings["tnet_builder"](**kwargs)
    if ade20k_weights is not None:
        if preset != "pspnet50":
            raise ValueError(f"--ade20k-weights {ade20k_weights}: only the pspnet50 preset uses ADE20K weights")
        print(load_ade20k_weights(tnet, ade20k_weights))
    if settings["tnet_mean"] is None:
        return tnet, tnet
    image = keras.Input((input_size, input_size, 3), name="image")
    probs = tnet(Normalize(settings["tnet_mean"], settings["tnet_std"], name="tnet_normalize")(image))
    return keras.Model(image, probs, name=f"{tnet.name}_on_rgb"), tnet


def build_mnet_for_training(preset: str, mnet_init: str | None = None) -> keras.Model:
    """The preset's M-Net; `mnet_init="hed"` loads HED's VGG16 encoder (paper-width M-Net only)."""
    mnet = build_mnet(**resolve_preset(preset)["mnet_kwargs"])
    init = mnet_init or ("hed" if preset == "pspnet50" else "none")
    if init == "hed":
        print(load_hed_encoder(mnet))
    elif init != "none":
        raise ValueError(f"--mnet-init must be 'hed' or 'none', got {init!r}")
    return mnet


# --------------------------------------------------------------------------------------------------
# the stages

def train_tnet(options: TrainOptions) -> StageTrainer:
    """Stage 1: the T-Net on trimaps made from the alphas; loss `L_t`."""
    strategy = _strategy(options)
    size = options.input_size or TNET_SIZES[options.preset]
    train, val = _datasets(options, lambda samples, training: data.make_tnet_dataset(
        samples, size, options.batch_size, training=training, seed=options.seed,
        backgrounds_dir=options.backgrounds_dir))

    def build() -> StageTrainer:
        network, tnet = build_tnet_for_training(options.preset, size if options.preset == "pspnet50" else None,
                                                options.ade20k_weights, options.imagenet_weights)
        return StageTrainer(network, "tnet", saved_network=tnet)

    return fit_stage(build, train, val, _fit_settings(options, "tnet"), strategy)


def train_mnet(options: TrainOptions) -> StageTrainer:
    """Stage 2: the M-Net on ground-truth trimaps (`alpha_p = F_gt + U_gt * alpha_r`); loss `L_p`."""
    strategy = _strategy(options)
    size = options.input_size or MNET_CROP_SIZE
    train, val = _datasets(options, lambda samples, training: data.make_mnet_dataset(
        samples, options.batch_size, crop_sizes=tuple(options.crop_sizes), output_size=size, training=training,
        seed=options.seed, backgrounds_dir=options.backgrounds_dir))

    def build() -> StageTrainer:
        return StageTrainer(build_mnet_for_training(options.preset, options.mnet_init), "mnet",
                            loss_weights=options.loss_weights)

    return fit_stage(build, train, val, _fit_settings(options, "mnet"), strategy)


def build_shm_from_stages(preset: str, tnet_weights: Path, mnet_weights: Path) -> keras.Model:
    """The SHM model of `preset` with the T-Net and M-Net weights of stages 1 and 2."""
    model = build_shm(preset)
    load_weights_checked(model.tnet, tnet_weights, f"T-Net weights of preset {preset!r} (--tnet-weights)")
    load_weights_checked(model.mnet, mnet_weights, f"M-Net weights of preset {preset!r} (--mnet-weights)")
    return model


def train_shm(options: TrainOptions) -> StageTrainer:
    """Stage 3: the whole SHM end to end from stages 1 and 2; loss `L = L_p + w_t L_t`."""
    if options.tnet_weights is None or options.mnet_weights is None:
        raise ValueError("the end-to-end stage needs --tnet-weights and --mnet-weights (stages 1 and 2)")
    strategy = _strategy(options)
    size = options.input_size or resolve_preset(options.preset)["working_size"]
    train, val = _datasets(options, lambda samples, training: data.make_shm_dataset(
        samples, size, options.batch_size, training=training, seed=options.seed,
        backgrounds_dir=options.backgrounds_dir))

    def build() -> StageTrainer:
        model = build_shm_from_stages(options.preset, options.tnet_weights, options.mnet_weights)
        return StageTrainer(model, "shm", loss_weights=options.loss_weights)

    return fit_stage(build, train, val, _fit_settings(options, "shm"), strategy)


# --------------------------------------------------------------------------------------------------
# T-Net prediction

def predict_trimaps(input_dir: Path, output_dir: Path, weights: Path, preset: str = "lite",
                    input_size: int | None = None) -> int:
    """Write `output_dir/<stem>.png` trimaps (0/128/255) of every photo in `input_dir`; return failures.

    `weights` (a stage-1 `best.weights.h5`) is only read. Each photo is resized to the T-Net size,
    the probabilities resized back to the photo's size. A bad photo is reported and skipped.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise ValueError(f"{input_dir}: no such folder")
    if output_dir.resolve() == input_dir.resolve():
        raise ValueError(f"{output_dir}: the output folder must differ from the input folder")
    size = input_size or TNET_SIZES[preset]
    network, tnet = build_tnet_for_training(preset, size, imagenet_weights="none")
    load_weights_checked(tnet, weights, f"T-Net weights of preset {preset!r}")
    photos = list_images(input_dir)
    if not photos:
        raise ValueError(f"{input_dir}: no images")
    failures = 0
    for path in progress(photos, unit="photo"):
        try:
            rgb = read_image(path)
        except ImageReadError as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        image = tf.image.resize(tf.convert_to_tensor(rgb[None], tf.float32) / 255.0, (size, size))
        probs = network(image, training=False)
        probs = tf.image.resize(tf.cast(probs, tf.float32), rgb.shape[:2])
        classes = tf.argmax(probs[0], axis=-1)
        write_png_atomic(output_dir / f"{path.stem}.png", np.asarray(to_png_values(classes)))
    print(f"{len(photos) - failures} trimaps written to {output_dir}, {failures} failed")
    return failures
