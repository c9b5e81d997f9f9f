"""Stage 3 of Semantic Human Matting: train the whole model end to end from stages 1 and 2.

Builds SHM from the T-Net and M-Net weights of `pretrain_tnet.py` and `pretrain_mnet.py` and trains
it with `L = 0.5 L_alpha + 0.5 L_comp + 0.01 L_t`; with --photo-val-dir the best epoch is chosen on
the photos as users see them (full resolution, binary masks). Example:

    python combined_model.py --data-dir DATA --out-dir runs/shm_lite --preset lite \\
        --tnet-weights runs/tnet_lite/best.weights.h5 --mnet-weights runs/mnet_lite/best.weights.h5

Its best.weights.h5 runs as it is with `python inference.py --weights runs/shm_lite/best.weights.h5
--preset lite`, exports with `python export.py --weights ... --preset lite --format onnx
--dynamic-size --output shm_lite.onnx`, and loads with `models.build_shm(preset).load_weights(...)`.
Continue an interrupted run with the same command plus --resume. DATA: see docs/data.md
(`python -m shm.synthetic --out DATA` makes a synthetic one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shm.training.cli import add_common_arguments, add_loss_weight_arguments, run_stage
from shm.training.stages import train_shm


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "shm")
    add_loss_weight_arguments(parser, with_trimap=True)
    group = parser.add_argument_group("stage weights")
    group.add_argument("--tnet-weights", type=Path, required=True,
                       help="T-Net weights of stage 1 (pretrain_tnet.py's best.weights.h5), or a whole SHM model "
                            "(.keras, e.g. weights/shm_lite.keras) whose T-Net starts this stage")
    group.add_argument("--mnet-weights", type=Path, required=True,
                       help="M-Net weights of stage 2 (pretrain_mnet.py's best.weights.h5), or a whole SHM model "
                            "(.keras) whose M-Net starts this stage: both flags on weights/shm_lite.keras go on "
                            "training the shipped model")
    group.add_argument("--freeze-backbone-bn", action="store_true",
                       help="keep the ImageNet backbone's BatchNorm layers as ImageNet left them (inference mode, "
                            "statistics and scales not trained); default: they train with the rest")
    group = parser.add_argument_group("choosing the best epoch")
    group.add_argument("--photo-val-dir", type=Path, nargs="+",
                       help="validation folders (image/, mask/, optional alpha/) scored after every epoch through "
                            "the real inference path at full resolution (shm.validation); the best checkpoint is "
                            "then the one with the lowest mean whole-image SAD against the masks (default: the "
                            "validation SAD of --val-dir's views)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_stage(train_shm, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
