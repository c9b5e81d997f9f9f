"""The command line of the training stages: the flags `pretrain_tnet.py`, `pretrain_mnet.py` and
`combined_model.py` share, turned into one `TrainOptions` per run.

A flag's default lives in one place, `shm.training.options`: the stage-dependent ones (`--epochs`,
`--lr`) in `DEFAULT_EPOCHS` / `DEFAULT_LEARNING_RATES`, the others as `TrainOptions`' field
defaults; the help shows them. Values the stages cannot use (`--lr -1`, `--batch-size 0`) are
refused in one line naming the flag (`TrainOptions` checks them, for Python callers too).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable

from models.presets import PRESETS
from shm.augment import Augmentation
from shm.io import stop_on_sigterm_like_sigint
from shm.training.callbacks import TrainingDiverged
from shm.training.distribute import STRATEGIES
from shm.training.options import DEFAULT_EPOCHS, DEFAULT_LEARNING_RATES, TrainOptions

DEFAULTS = {field.name: field.default for field in dataclasses.fields(TrainOptions)
            if field.default is not dataclasses.MISSING}


def add_common_arguments(parser: argparse.ArgumentParser, stage: str) -> None:
    """The flags every stage shares; defaults that differ by stage are set from `stage`."""
    group = parser.add_argument_group("data")
    group.add_argument("--data-dir", nargs="+", required=True, metavar="FOLDER[:WEIGHT]",
                       help="data folders: image/, alpha/ or mask/, optional fg/ and bg/ (docs/data.md); "
                            "several are drawn from in proportion to WEIGHT (default 1) times their size, "
                            "e.g. data/ccp_train data/ccp_teacher:0.5")
    group.add_argument("--list-file", help="list of stems to train on (a path, or a name inside each --data-dir); "
                       "default: every photo")
    group.add_argument("--val-dir", type=Path, nargs="+",
                       help="separate validation data folders (then --val-fraction is not used)")
    group.add_argument("--val-fraction", type=float, default=DEFAULTS["val_fraction"],
                       help="fraction of --data-dir's samples held out for validation, chosen with --seed; "
                            "0 trains without validation (the best checkpoint then follows the training loss) "
                            "(default: %(default)s)")
    group.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed of the split, shuffling and augmentation "
                       "(default: %(default)s)")
    group.add_argument("--backgrounds-dir", type=Path,
                       help="photos without people to composite the people onto (python -m shm.backgrounds "
                            "makes them from the training photos; default: no compositing)")
    group.add_argument("--augment", nargs="+", default=DEFAULTS["augment"], metavar="FIELD=VALUE",
                       help="change the training views' augmentation (shm.augment.Augmentation, docs/data.md), "
                            "e.g. --augment framing_prob=0 group_prob=0.1 (default: its field defaults: "
                            + ", ".join(f"{field.name}={field.default}" for field in dataclasses.fields(Augmentation))
                            + ")")

    group = parser.add_argument_group("model and optimisation")
    group.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULTS["preset"],
                       help="lite: MobileNetV2 T-Net and slim M-Net (CPU friendly); lite_efficientnet: the same "
                            "with an EfficientNet-Lite0 T-Net encoder; pspnet50: the paper's (default: %(default)s)")
    group.add_argument("--working-size", "--input-size", type=int, dest="working_size",
                       help="the longer side photos are seen at, as at inference (shm.geometry; default: the "
                            "preset's working size, 320 lite / 512 pspnet50); the pspnet50 T-Net resizes to 473 inside")
    group.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="global batch size, split over the devices "
                       "(default: %(default)s)")
    group.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS[stage],
                       help="total epochs, counting those already done when resuming (default: %(default)s)")
    group.add_argument("--steps-per-epoch", type=int,
                       help="training steps per epoch, the data repeating as needed (default: one pass)")
    group.add_argument("--lr", type=float, default=DEFAULT_LEARNING_RATES[stage],
                       help="Adam's initial learning rate; it decays along a cosine per epoch "
                            "(default: %(default)s)")
    group.add_argument("--final-lr-fraction", type=float, default=DEFAULTS["final_lr_fraction"],
                       help="the cosine ends at this fraction of --lr (default: %(default)s)")
    group.add_argument("--ema-momentum", type=float, default=DEFAULTS["ema_momentum"], metavar="M",
                       help="validate and checkpoint an exponential moving average of the weights (Polyak "
                            "averaging: each step average = M * average + (1 - M) * weights; 0.99 spans about "
                            "100 steps); training itself goes on from the weights (default: %(default)s: off)")

    group = parser.add_argument_group("output and scale")
    group.add_argument("--out-dir", type=Path, required=True,
                       help="where checkpoints (best/last/resume), log.csv, curves.png and tensorboard/ go")
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --out-dir from its last completed epoch (weights, optimiser, "
                            "epoch); without it an --out-dir holding a run is refused")
    group.add_argument("--strategy", choices=STRATEGIES, default=DEFAULTS["strategy"],
                       help="default: one device; mirrored: every local GPU; multiworker: several machines "
                            "with TF_CONFIG (docs/training.md) (default: %(default)s)")
    group.add_argument("--mixed-precision", action="store_true",
                       help="compute in float16 with float32 weights and losses (for GPUs with tensor cores)")
    add_quiet_argument(group)


def add_quiet_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--quiet of the training tools: only problems are printed (error lines on stderr, skipped data files)."""
    parser.add_argument("--quiet", action="store_true",
                        help="print only problems: errors (on stderr) and skipped files; no progress bar or "
                             "epoch lines, no notes or summaries (a training's log.csv and state.json keep every "
                             "figure) (default: a progress bar on a terminal, one line per epoch in a log file)")


def add_loss_weight_arguments(parser: argparse.ArgumentParser, with_trimap: bool) -> None:
    group = parser.add_argument_group("loss weights")
    group.add_argument("--alpha-weight", type=float, default=DEFAULTS["alpha_weight"], help="weight of the alpha prediction loss "
                       "(default: %(default)s)")
    group.add_argument("--comp-weight", type=float, default=DEFAULTS["comp_weight"], help="weight of the compositional loss "
                       "(default: %(default)s)")
    if with_trimap:
        group.add_argument("--trimap-weight", type=float, default=DEFAULTS["trimap_weight"], help="weight of the trimap "
                           "cross-entropy (default: %(default)s)")


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    """The run's `TrainOptions` from parsed flags (`ValueError` naming a flag whose value is unusable).
    Every flag is a field: a flag without one would be silently ignored, so it is a programming error."""
    flags = {name: value for name, value in vars(args).items() if name != "command"}  # pretrain_tnet.py's verb
    unknown = set(flags) - {field.name for field in dataclasses.fields(TrainOptions)}
    if unknown:
        raise TypeError(f"flags without a TrainOptions field: {sorted(unknown)}")
    return TrainOptions(**flags)


STOPPED_TRAINING = ("the last complete epoch's checkpoint is kept; run the same command with --resume "
                    "to continue")


def run_cli(function: Callable, *arguments, stopped_hint: str = "no file is left half-written") -> int:
    """Run a stage; a known failure is one line on stderr and exit status 1, never a traceback.

    A function that returns a count of failed files (an int) exits 1 when it is not 0. SIGTERM
    stops it like Ctrl-C (the last complete checkpoint stays, no temporary file is left): one
    line with `stopped_hint` on stderr and exit status 130.
    """
    stop_on_sigterm_like_sigint()
    try:
        result = function(*arguments)
    except (ValueError, TrainingDiverged) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM (shm.io.Terminated)
        print(f"stopped ({error or 'Ctrl-C'}): {stopped_hint}", file=sys.stderr)
        return 130
    return int(bool(result)) if isinstance(result, int) else 0


def run_stage(stage: Callable[[TrainOptions], object], args: argparse.Namespace) -> int:
    """`run_cli` of `stage(options_from_args(args))`: unusable flag values are a one-line error too."""
    return run_cli(lambda: stage(options_from_args(args)), stopped_hint=STOPPED_TRAINING)
