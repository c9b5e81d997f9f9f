"""The three training stages of SHM and the T-Net's trimap prediction, each run given by one
`TrainOptions` (`shm.training.options`).

Stage 1 trains the T-Net on trimaps, stage 2 the M-Net on ground-truth trimaps, stage 3 the whole
model end to end from the weights of stages 1 and 2. The scripts `pretrain_tnet.py`,
`pretrain_mnet.py` and `combined_model.py` are argparse (`shm.training.cli`) over `train_tnet`,
`train_mnet`, `train_shm` and `predict_trimaps`.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from models.mnet import build_mnet
from models.shm import build_shm, resolve_preset, tnet_on_rgb
from models.weights import load_ade20k_weights, load_hed_encoder
from shm import data
from shm.console import progress, report, report_error
from shm.inference import NetworkView
from shm.io import ImageReadError, check_distinct_folders, list_images, read_image, write_png_atomic
from shm.training.callbacks import PhotoValidation
from shm.training.checkpoints import CheckpointError, load_weights_checked
from shm.training.distribute import make_strategy, set_mixed_precision
from shm.training.engine import STAGES, StageTrainer, fit_stage
from shm.training.options import TrainOptions
from shm.trimap import to_png_values
from shm.upsampling import upsample_classes
from shm.validation import ValidationSplit

# --------------------------------------------------------------------------------------------------
# data

def parse_data_dir(text: str | Path) -> tuple[Path, float]:
    """`FOLDER` or `FOLDER:WEIGHT` -> (folder, weight); a weight must be a positive number."""
    folder, _, weight = str(text).rpartition(":")
    if not folder or not weight.replace(".", "", 1).isdigit():
        return Path(text), 1.0
    if float(weight) <= 0:
        raise ValueError(f"--data-dir {text}: the weight must be positive")
    return Path(folder), float(weight)


def _discover(folder: Path, list_file: str | None, label: str, needs_colours: bool = False,
              quiet: bool = False) -> list:
    samples = data.discover_samples(folder, list_file, skip_bad=True)
    report(f"{label}{samples.summary()}", quiet)
    for problem in samples.skipped:  # a problem: shown even when quiet
        print(f"skipped: {problem}")
    without = sum(s.fg is None or s.bg is None for s in samples)
    if without and needs_colours:
        report(f"note: {folder}: {without} samples have no fg/ and bg/ colours: their compositional loss "
               "compares alpha * image instead (python -m shm.alpha_from_mask estimates the colours)", quiet)
    return list(samples)


def split_samples(options: TrainOptions, needs_colours: bool = False) -> tuple[list[data.Source], list | None]:
    """Training sources (one per --data-dir, with its weight) and validation samples: --val-dir,
    or a seeded --val-fraction of the training samples (taken from each folder alike).
    `needs_colours`: the stage has a compositional loss, so folders without fg/ and bg/ are noted."""
    if not options.data_dir:
        raise ValueError("--data-dir: no data folder given")
    sources = [data.Source(_discover(folder, options.list_file, "", needs_colours, options.quiet), weight)
               for folder, weight in map(parse_data_dir, options.data_dir)]
    if options.val_dir is not None:
        return sources, [s for folder in options.val_dir
                         for s in _discover(folder, None, "validation: ", quiet=options.quiet)]
    if not 0.0 <= options.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {options.val_fraction}")
    if options.val_fraction == 0:
        return sources, None
    train_sources, held_out = [], []
    for source in sources:
        samples = list(source.samples)
        count = max(1, round(len(samples) * options.val_fraction))
        if count >= len(samples):
            raise ValueError(f"{len(samples)} samples are too few to hold out {count} for validation")
        random.Random(options.seed).shuffle(samples)
        train_sources.append(data.Source(samples[count:], source.weight))
        held_out += samples[:count]
    return train_sources, held_out


def stage_datasets(options: TrainOptions, stage: str) -> tuple[tf.data.Dataset, tf.data.Dataset | None, int]:
    """The stage's training and validation data, and the training steps of one epoch (by default
    as many batches as the training samples fill)."""
    sources, val_samples = split_samples(options, needs_colours=stage != "tnet")
    augmentation = options.augmentation
    if options.augment:
        report(f"augmentation: {augmentation}", options.quiet)
    working_size, multiple = options.geometry
    common = dict(working_size=working_size, batch_size=options.batch_size, seed=options.seed, multiple=multiple)
    train = data.make_dataset(stage, sources, training=True, backgrounds_dir=options.backgrounds_dir,
                              augmentation=augmentation, **common)
    val = data.make_dataset(stage, val_samples, training=False, **common) if val_samples else None
    steps = options.steps_per_epoch or max(1, sum(len(s.samples) for s in sources) // options.batch_size)
    return train, val, steps


def _one_pass(options: TrainOptions, steps_per_epoch: int) -> TrainOptions:
    """The run's options with --steps-per-epoch counted (the stages' training data repeat forever)."""
    return dataclasses.replace(options, steps_per_epoch=steps_per_epoch)


def _strategy(options: TrainOptions) -> tf.distribute.Strategy:
    # The multi-worker strategy must exist before any other TF op, the dtype policy before any layer.
    strategy = make_strategy(options.strategy)
    set_mixed_precision(options.mixed_precision)
    return strategy


# --------------------------------------------------------------------------------------------------
# networks

def freeze_backbone_batchnorm(tnet: keras.Model) -> int:
    """Keep the BatchNorm layers of a light T-Net's ImageNet backbone as ImageNet left them: in
    inference mode, statistics and scales not trained (`--freeze-backbone-bn`). Returns how many."""
    if not hasattr(tnet, "backbone"):
        raise ValueError("--freeze-backbone-bn: only the light T-Nets have an ImageNet backbone")
    layers = [layer for layer in tnet.backbone._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.trainable = False
    return len(layers)


def build_tnet_for_training(preset: str, ade20k_weights: Path | None = None, imagenet_weights: str | None = None,
                            quiet: bool = False) -> tuple[keras.Model, keras.Model]:
    """(the network stage 1 trains on RGB [0, 1] of any valid size, the T-Net inside it whose
    weights are saved).

    A T-Net of fixed size (PSPNet-50, 473) gets the SHM graph's resize in front and behind, and
    PSPNet-50's `Normalize` (it takes keras-segmentation's preprocessed input), as the SHM graph
    puts them (`models.shm.tnet_on_rgb`); the light T-Net takes any size and normalises inside itself.
    `imagenet_weights`: for the light T-Net, its backbone's converted `.npz` (None: the backbone's
    default file; "none": random).
    """
    settings = resolve_preset(preset)
    kwargs = dict(settings["tnet_kwargs"])
    if settings["tnet"] == "build_light_tnet":
        kwargs.update(backbone_weights=None if imagenet_weights == "none" else "imagenet")
        if imagenet_weights not in (None, "none"):
            kwargs["weights_path"] = imagenet_weights
    tnet = settings["tnet_builder"](**kwargs)
    if ade20k_weights is not None:
        if preset != "pspnet50":
            raise ValueError(f"--ade20k-weights {ade20k_weights}: only the pspnet50 preset uses ADE20K weights")
        report(str(load_ade20k_weights(tnet, ade20k_weights)), quiet)
    if settings["tnet_mean"] is None and settings["tnet_size"] is None:
        return tnet, tnet
    image = keras.Input((None, None, 3), name="image")
    probs = tnet_on_rgb(tnet, image, settings["tnet_size"], settings["tnet_mean"], settings["tnet_std"])
    return keras.Model(image, probs, name=f"{tnet.name}_on_rgb"), tnet


def build_mnet_for_training(preset: str, mnet_init: str | None = None, quiet: bool = False) -> keras.Model:
    """The preset's M-Net; `mnet_init="hed"` loads HED's VGG16 encoder (paper-width M-Net only)."""
    mnet = build_mnet(**resolve_preset(preset)["mnet_kwargs"])
    init = mnet_init or ("hed" if preset == "pspnet50" else "none")
    if init == "hed":
        report(str(load_hed_encoder(mnet)), quiet)
    elif init != "none":
        raise ValueError(f"--mnet-init must be 'hed' or 'none', got {init!r}")
    return mnet


# --------------------------------------------------------------------------------------------------
# the stages

def build_trainer(stage: str, options: TrainOptions) -> StageTrainer:
    """The trainer of `stage` (`"tnet"`, `"mnet"`, `"shm"`) as its training builds it, inside the
    strategy's scope: the network with its starting weights, `--freeze-backbone-bn` applied."""
    if stage == "tnet":
        going_on = options.tnet_weights is not None
        if going_on and (options.ade20k_weights is not None or options.imagenet_weights not in (None, "none")):
            raise ValueError("--tnet-weights replaces the ADE20K or ImageNet start: give one of them")
        # Going on from trained weights, the backbone's ImageNet file is not read only to be overwritten.
        network, tnet = build_tnet_for_training(options.preset, options.ade20k_weights,
                                                "none" if going_on else options.imagenet_weights, quiet=options.quiet)
        if going_on:
            load_stage_weights(tnet, "tnet", options.tnet_weights, options.preset, "--tnet-weights")
        _freeze_if_asked(options, tnet)
        return StageTrainer(network, "tnet", saved_network=tnet)
    if stage == "mnet":
        if options.mnet_weights is not None and options.mnet_init == "hed":
            raise ValueError("--mnet-weights replaces --mnet-init hed: give one of them")
        mnet = build_mnet_for_training(options.preset, "none" if options.mnet_weights else options.mnet_init,
                                       quiet=options.quiet)
        if options.mnet_weights is not None:
            load_stage_weights(mnet, "mnet", options.mnet_weights, options.preset, "--mnet-weights")
        return StageTrainer(mnet, "mnet", loss_weights=options.loss_weights)
    if stage != "shm":
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    _require_stage_weights(options)
    model = build_shm_from_stages(options.preset, options.tnet_weights, options.mnet_weights)
    _freeze_if_asked(options, model.tnet)
    return StageTrainer(model, "shm", loss_weights=options.loss_weights)


def _require_stage_weights(options: TrainOptions) -> None:
    if options.tnet_weights is None or options.mnet_weights is None:
        raise ValueError("the end-to-end stage needs --tnet-weights and --mnet-weights (stages 1 and 2)")


def _freeze_if_asked(options: TrainOptions, tnet: keras.Model) -> None:
    if options.freeze_backbone_bn:
        report(f"{freeze_backbone_batchnorm(tnet)} BatchNorm layers of the backbone frozen", options.quiet)


def train_tnet(options: TrainOptions) -> StageTrainer:
    """Stage 1: the T-Net on trimaps made from the alphas; loss `L_t`."""
    strategy = _strategy(options)
    train, val, steps = stage_datasets(options, "tnet")
    return fit_stage(lambda: build_trainer("tnet", options), train, val, _one_pass(options, steps), strategy)


def train_mnet(options: TrainOptions) -> StageTrainer:
    """Stage 2: the M-Net on perturbed ground-truth trimaps (`alpha_p = F + U * alpha_r`); loss `L_p`
    with the raw-alpha part, over the edge band."""
    strategy = _strategy(options)
    train, val, steps = stage_datasets(options, "mnet")
    return fit_stage(lambda: build_trainer("mnet", options), train, val, _one_pass(options, steps), strategy)


def load_stage_weights(network: keras.Model, part: str, path: Path, preset: str, flag: str,
                       whole_models: dict | None = None) -> None:
    """Load `network`, the `part` ("tnet" or "mnet") of `preset`, from `path`: a stage's
    `best.weights.h5`, or a whole SHM model saved as `.keras` (such as the shipped
    `weights/shm_lite.keras`) whose T-Net or M-Net is taken. `whole_models` caches loaded `.keras`
    files by path (both parts usually come from the same one). `CheckpointError` names `flag`."""
    from shm.backends import ModelFileError, load_shm_model

    what = f"{'T-Net' if part == 'tnet' else 'M-Net'} weights of preset {preset!r} ({flag})"
    if Path(path).suffix != ".keras":
        load_weights_checked(network, path, what)
        return
    whole_models = {} if whole_models is None else whole_models
    try:
        if path not in whole_models:
            whole_models[path] = load_shm_model(path)
        network.set_weights(getattr(whole_models[path], part).get_weights())
    except (ModelFileError, ValueError) as error:
        raise CheckpointError(f"{path}: its {part} does not fit as {what} ({error})") from None


def build_shm_from_stages(preset: str, tnet_weights: Path, mnet_weights: Path) -> keras.Model:
    """The SHM model of `preset` with the T-Net and M-Net weights of stages 1 and 2 (each a
    `best.weights.h5` or a whole SHM `.keras`, `load_stage_weights`)."""
    model = build_shm(preset)
    whole_models = {}
    for part, path, flag in (("tnet", tnet_weights, "--tnet-weights"), ("mnet", mnet_weights, "--mnet-weights")):
        load_stage_weights(getattr(model, part), part, path, preset, flag, whole_models)
    return model


def train_shm(options: TrainOptions) -> StageTrainer:
    """Stage 3: the whole SHM end to end from stages 1 and 2; loss `L = L_p + w_t L_t`."""
    _require_stage_weights(options)
    strategy = _strategy(options)
    train, val, steps = stage_datasets(options, "shm")

    validators, monitor = [], None
    if options.photo_val_dir:
        splits = [ValidationSplit.from_folder(folder) for folder in options.photo_val_dir]
        validators, monitor = [photo_validation(options, splits)], "val_photo_sad"
    return fit_stage(lambda: build_trainer("shm", options), train, val, _one_pass(options, steps), strategy,
                     validators=validators, monitor=monitor)


def photo_validation(options: TrainOptions, splits: Sequence[ValidationSplit]) -> PhotoValidation:
    """Stage 3's `--photo-val-dir` scoring, at the sizes the run's data are seen at (`options.geometry`)."""
    working_size, multiple = options.geometry
    return PhotoValidation(splits, working_size, multiple)


# --------------------------------------------------------------------------------------------------
# T-Net prediction

def predict_trimaps(input_dir: Path, output_dir: Path, weights: Path, preset: str = "lite",
                    working_size: int | None = None, quiet: bool = False) -> int:
    """Write `output_dir/<stem>.png` trimaps (0/128/255) of every photo in `input_dir`; return failures.

    `weights` (a stage-1 `best.weights.h5`) is only read. Each photo goes through the T-Net as
    through `shm.Matter` (its `NetworkView`, `working_size` by default the preset's), and the
    probabilities come back to the photo's size as Matter's (`shm.upsampling.upsample_classes`):
    the trimap `Matter.matte(..., trimap=True)` gives with these T-Net weights. A bad photo is
    reported and skipped.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise ValueError(f"{input_dir}: no such folder")
    check_distinct_folders(output_dir, input_dir)
    view = NetworkView(working_size or resolve_preset(preset)["working_size"])
    network, tnet = build_tnet_for_training(preset, imagenet_weights="none")
    load_weights_checked(tnet, weights, f"T-Net weights of preset {preset!r}")
    photos = list_images(input_dir)
    if not photos:
        raise ValueError(f"{input_dir}: no images")
    failures = 0
    for path in progress(photos, quiet, unit="photo"):
        try:
            rgb = read_image(path)
        except ImageReadError as error:
            report_error(str(error))
            failures += 1
            continue
        network_input, _, box = view.network_input(rgb)
        probabilities = np.asarray(network(network_input[None], training=False))[0]
        classes = upsample_classes(probabilities[box], *rgb.shape[:2])
        write_png_atomic(output_dir / f"{path.stem}.png", to_png_values(classes))
    report(f"{len(photos) - failures} trimaps written to {output_dir}, {failures} failed", quiet)
    return failures
