"""Facts about the networks of each preset.

Example:
    python -m models --summary
    python -m models --summary --presets lite --size 256
"""

from __future__ import annotations

import argparse

from models.presets import PRESETS
from models.profiling import count_flops, preset_parts


def print_summary(presets: list[str], size: int | None) -> None:
    """Parameters and GFLOPs (TF profiler, multiply-add = 2) of T-Net, M-Net and the whole model."""
    width = max(len("preset"), *map(len, presets))
    print(f"{'preset':<{width}} {'part':<6} {'input (batch 1)':<18} {'params':>12} {'GFLOPs':>9}")
    for preset in presets:
        _, parts = preset_parts(preset, size)
        for part, (model, shape) in parts.items():
            flops = count_flops(model, shape)
            print(f"{preset:<{width}} {part:<6} {'x'.join(map(str, shape[1:])):<18} {model.count_params():>12,} "
                  f"{flops / 1e9:>9.2f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true",
                        help="print parameters and FLOPs (TF profiler on the frozen graph, a multiply-add "
                             "counts 2) of the T-Net, the M-Net and the whole model of each preset")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=list(PRESETS),
                        help="presets to describe (default: all: %(default)s)")
    parser.add_argument("--size", type=int, default=None,
                        help="M-Net working size (default: each preset's working_size)")
    args = parser.parse_args(argv)
    if not args.summary:
        parser.error("nothing to do: give --summary")
    print_summary(args.presets, args.size)


if __name__ == "__main__":
    main()
