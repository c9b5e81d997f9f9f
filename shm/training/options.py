"""The options of one training run: one `TrainOptions` per run, read by the stages (data, networks,
photo validation) and by the engine (`shm.training.engine.fit_stage`: epochs, learning rate,
out-dir, resume) alike.

Each field is a flag of `shm.training.cli`, named after it, and its default lives here: the field's
default, or for `--epochs` and `--lr`, which differ by stage, `DEFAULT_EPOCHS` and
`DEFAULT_LEARNING_RATES` (the field's None means "the stage's"). Values no stage can use raise
`ValueError` naming the flag, for Python callers as for the command line. The loss weights'
defaults are the paper's, `shm.losses.LossWeights`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from models.presets import PRESETS
from shm.augment import Augmentation, augmentation_with
from shm.losses import LossWeights

DEFAULT_LEARNING_RATES = {"tnet": 1e-3, "mnet": 1e-4, "shm": 1e-4}
DEFAULT_EPOCHS = {"tnet": 50, "mnet": 50, "shm": 20}


@dataclasses.dataclass
class TrainOptions:
    """Everything one training run needs (see the module docstring).

    `steps_per_epoch`: None for one pass over the training data (the stages count it from their
    samples before the engine runs). `tensorboard` and `verbose` (Keras' verbosity; "auto": a
    progress bar on a terminal, one line per epoch in a log file) are for Python callers such as
    tests and benchmarks; the scripts keep their defaults.
    """

    data_dir: Sequence[str | Path]  # folders, each optionally `FOLDER:WEIGHT` (`stages.parse_data_dir`)
    out_dir: Path
    preset: str = "lite"
    working_size: int | None = None  # None: the preset's
    batch_size: int = 4
    epochs: int | None = None
    lr: float | None = None
    final_lr_fraction: float = 0.01
    ema_momentum: float = 0.0  # 0: checkpoints hold the trained weights, not their moving average
    steps_per_epoch: int | None = None
    resume: bool = False
    strategy: str = "default"
    mixed_precision: bool = False
    quiet: bool = False  # print only problems: no Keras lines, notes or closing summary; errors still raise
    list_file: str | None = None
    val_dir: Sequence[Path] | None = None
    val_fraction: float = 0.1
    seed: int = 0
    backgrounds_dir: Path | None = None
    augment: Sequence[str] = ()  # `FIELD=VALUE` changes of the training views' `Augmentation`
    alpha_weight: float = LossWeights.alpha
    comp_weight: float = LossWeights.comp
    trimap_weight: float = LossWeights.trimap
    # stage 1
    ade20k_weights: Path | None = None
    imagenet_weights: str | None = None
    freeze_backbone_bn: bool = False
    # stage 2
    mnet_init: str | None = None
    # the weights a stage starts from: stage 3 needs both, stages 1 and 2 may go on from their own
    tnet_weights: Path | None = None
    mnet_weights: Path | None = None
    # stage 3
    photo_val_dir: Sequence[Path] | None = None
    # not flags
    tensorboard: bool = True
    verbose: str | int = "auto"

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(sorted(PRESETS))}, got {self.preset!r}")
        at_least_one = {"--batch-size": self.batch_size, "--epochs": self.epochs,
                        "--steps-per-epoch": self.steps_per_epoch, "--working-size": self.working_size}
        for flag, value in at_least_one.items():
            if value is not None and value < 1:
                raise ValueError(f"{flag} must be at least 1, got {value}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ValueError(f"--final-lr-fraction must be in [0, 1], got {self.final_lr_fraction}")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"--ema-momentum must be in [0, 1), got {self.ema_momentum}")
        weights = {"--alpha-weight": self.alpha_weight, "--comp-weight": self.comp_weight,
                   "--trimap-weight": self.trimap_weight}
        for flag, value in weights.items():
            if value < 0:
                raise ValueError(f"{flag} must not be negative, got {value}")
        augmentation_with(self.augment)  # an unusable --augment is refused before any work

    def epochs_for(self, stage: str) -> int:
        """Total epochs of `stage`'s run: --epochs, else the stage's default."""
        return DEFAULT_EPOCHS[stage] if self.epochs is None else self.epochs

    def lr_for(self, stage: str) -> float:
        """Adam's initial learning rate in `stage`'s run: --lr, else the stage's default."""
        return DEFAULT_LEARNING_RATES[stage] if self.lr is None else self.lr

    @property
    def augmentation(self) -> Augmentation:
        """The training views' augmentation: the defaults with --augment's changes."""
        return augmentation_with(self.augment)

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(alpha=self.alpha_weight, comp=self.comp_weight, trimap=self.trimap_weight)

    @property
    def geometry(self) -> tuple[int, int]:
        """(working size, size multiple) of every view of a photo in this run, the data's and the
        photo validation's alike (`shm.geometry.network_size`): --working-size, else the preset's,
        and the preset's multiple (`models.presets`, the one source of sizes)."""
        settings = PRESETS[self.preset]
        return self.working_size or settings["working_size"], settings["size_multiple"]
