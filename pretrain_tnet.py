"""Stage 1 of Semantic Human Matting: train the T-Net, or predict trimaps with trained weights.

Train (checkpoints, log.csv, curves.png and tensorboard/ go to --out-dir):

    python pretrain_tnet.py train_tnet --data-dir DATA --out-dir runs/tnet_lite \\
        --preset lite --epochs 50 --batch-size 8

    python pretrain_tnet.py train_tnet --data-dir DATA --out-dir runs/tnet_effnet \\
        --preset lite_efficientnet --epochs 50 --batch-size 8  # EfficientNet-Lite0 encoder (ImageNet start)

    python pretrain_tnet.py train_tnet --data-dir DATA --out-dir runs/tnet_psp --preset pspnet50 \\
        --ade20k-weights pspnet50_ade20k.h5          # the paper's T-Net from ADE20K weights

    python pretrain_tnet.py train_tnet --data-dir DATA --out-dir runs/tnet_more \\
        --tnet-weights weights/shm_lite.keras --lr 3e-4   # go on from the shipped model's T-Net

Continue an interrupted run with the same command plus --resume. Predict trimaps (PNG 0/128/255;
the weights file is only read):

    python pretrain_tnet.py predict --input photos/ --output trimaps/ --weights runs/tnet_lite/best.weights.h5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.presets import PRESETS
from shm.training.cli import add_common_arguments, add_quiet_argument, run_cli, run_stage
from shm.training.stages import predict_trimaps, train_tnet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train_tnet", help="train the T-Net (stage 1)", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(train, "tnet")
    group = train.add_argument_group("initial weights")
    group.add_argument("--ade20k-weights", type=Path,
                       help="pspnet50: keras-segmentation's pspnet50_ade20k.h5 to start from (its classifier "
                            "is replaced); default: random initialisation")
    group.add_argument("--imagenet-weights",
                       help="lite presets: the converted ImageNet .npz of the T-Net's backbone (default: "
                            "weights/mobilenet_v2_imagenet.npz for lite, weights/efficientnet_lite0_imagenet.npz "
                            "for lite_efficientnet); 'none' starts from random weights")
    group.add_argument("--tnet-weights", type=Path,
                       help="go on training trained T-Net weights: a stage-1 best.weights.h5, or a whole SHM model "
                            "(.keras, e.g. weights/shm_lite.keras) whose T-Net is taken, in place of the ImageNet "
                            "or ADE20K start (default: none)")
    group.add_argument("--freeze-backbone-bn", action="store_true",
                       help="keep the ImageNet backbone's BatchNorm layers as ImageNet left them (inference mode, "
                            "statistics and scales not trained); default: they train with the rest")

    predict = commands.add_parser("predict", help="write trimap PNGs (0/128/255) of a folder of photos",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_argument("--input", type=Path, required=True, help="folder of photos")
    predict.add_argument("--output", type=Path, required=True, help="folder for <stem>.png trimaps (created)")
    predict.add_argument("--weights", type=Path, required=True,
                         help="T-Net weights of stage 1 (best.weights.h5 or last.weights.h5); never modified")
    predict.add_argument("--preset", choices=sorted(PRESETS), default="lite",
                         help="the preset the weights were trained with (default: %(default)s)")
    predict.add_argument("--working-size", "--input-size", type=int, dest="working_size",
                         help="the longer side photos are seen at, as by inference.py (default: the preset's, "
                              "320 lite, 512 pspnet50)")
    add_quiet_argument(predict)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "predict":
        return run_cli(predict_trimaps, args.input, args.output, args.weights, args.preset, args.working_size,
                       args.quiet)
    return run_stage(train_tnet, args)


if __name__ == "__main__":
    sys.exit(main())
