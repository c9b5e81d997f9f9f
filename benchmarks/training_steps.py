"""Seconds per training step of the training stages with oneDNN on, oneDNN off, and the backbone's
BatchNorm frozen: which setting trains fastest on this CPU?

Settings: `onednn-on` (`TF_ENABLE_ONEDNN_OPTS=1`), `onednn-off` (`=0`, TensorFlow's Eigen kernels),
`frozen-bn` (oneDNN on, the training flag `--freeze-backbone-bn`). TensorFlow reads its oneDNN switch
once, at import, so every (stage, setting) runs in a child process of its own, and the settings
alternate A B C A B C ... over `--rounds` rounds so that the machine's load falls on all of them alike.

A child does what a training run does, minus the files it keeps: the stage's trainer from
`shm.training.stages.build_trainer` (network, starting weights, `--freeze-backbone-bn`), the stage's
own training pipeline (`stage_datasets`), and `shm.training.fit_stage` (Adam, the engine's train step
and loss, its callbacks). Only the data is held still: `--batches` batches of the pipeline are read
into memory first, so the timed steps measure training and not the pipeline (which in a real run
shares the cores). A step is timed from one batch's end to the next; the `--warmup` first steps
(graph tracing) are dropped. Data: synthetic people (`shm.synthetic`) at the working size, or
`--data-dir`. Stage `shm` starts from untrained stage weights (a step's cost does not depend on
their values).

Reported per stage and setting: the median seconds per step over every timed step of every round,
steps per second, each round's median, and the time relative to oneDNN on. The table replaces the
section between `<!-- training_steps:start -->` and `<!-- training_steps:end -->` of `--output`.

Examples:
    python benchmarks/training_steps.py                     # lite, tnet and shm, 320, batch 8, 3 rounds
    python benchmarks/training_steps.py --stages tnet --rounds 1 --steps 2 --warmup 1 \\
        --batch-size 2 --working-size 64 --output /tmp/page.md   # a quick check that it runs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from performance import run_worker_process  # noqa: E402
from report import ONEDNN_VARIABLE, load_average, machine_description, write_section  # noqa: E402

START_MARK = "<!-- training_steps:start -->"
END_MARK = "<!-- training_steps:end -->"
STAGES = ("tnet", "mnet", "shm")
# setting: (oneDNN on, backbone BatchNorm frozen)
SETTINGS = {"onednn-on": (True, False), "onednn-off": (False, False), "frozen-bn": (True, True)}
REFERENCE = "onednn-on"


def child_environment(onednn: bool) -> dict[str, str]:
    """This process's environment with TensorFlow's oneDNN switch set explicitly on or off."""
    return {**os.environ, ONEDNN_VARIABLE: "1" if onednn else "0"}


# --------------------------------------------------------------------------------------------------
# the child: one stage, one setting

def step_seconds(stage: str, setting: str, args: argparse.Namespace) -> dict:
    """Train `stage` for `args.warmup + args.steps` steps as training does, on `args.batches` batches
    of its pipeline held in memory; the seconds of each step after the warm-up."""
    import time

    from shm.console import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from models.shm import build_shm
    from shm.training.engine import fit_stage
    from shm.training.options import TrainOptions
    from shm.training.stages import build_trainer, stage_datasets

    class StepTimer(keras.callbacks.Callback):
        """The time of each step, from the previous step's end (the first: from its own start)."""

        def __init__(self):
            super().__init__()
            self.seconds, self.last = [], None

        def on_train_batch_begin(self, batch, logs=None):
            if self.last is None:
                self.last = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            self.seconds.append(now - self.last)
            self.last = now

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        weights = {}
        if stage == "shm":  # untrained stage weights of the preset's networks, as stages 1 and 2 save them
            model = build_shm(args.preset)
            weights = {"tnet_weights": scratch / "tnet.weights.h5", "mnet_weights": scratch / "mnet.weights.h5"}
            model.tnet.save_weights(weights["tnet_weights"])
            model.mnet.save_weights(weights["mnet_weights"])
            keras.backend.clear_session()
        options = TrainOptions(data_dir=args.data_dir, out_dir=scratch / "run", preset=args.preset,
                               working_size=args.working_size, batch_size=args.batch_size, val_fraction=0,
                               freeze_backbone_bn=SETTINGS[setting][1], epochs=1,
                               steps_per_epoch=args.warmup + args.steps, tensorboard=False, quiet=True, **weights)
        keras.utils.set_random_seed(0)
        train, _, _ = stage_datasets(options, stage)
        batches = train.take(args.batches).cache()
        for _ in batches:  # one pass fills the cache: the timed steps read memory, not the pipeline
            pass
        timer = StepTimer()
        trainer = fit_stage(lambda: build_trainer(stage, options), batches.repeat(), None, options,
                            extra_callbacks=[timer])
    view_sizes = [f"{batch['image'].shape[1]}x{batch['image'].shape[2]}" for batch in batches]
    return {"stage": stage, "setting": setting, "onednn": os.environ.get(ONEDNN_VARIABLE, "default"),
            "trainable_variables": len(trainer.trainable_variables), "view_sizes": view_sizes,
            "seconds": timer.seconds[args.warmup:]}


# --------------------------------------------------------------------------------------------------
# the parent: data, the rounds of children, the table

def synthetic_data(folder: Path, count: int, size: int) -> Path:
    """`count` synthetic people of `size` x `size` pixels (`python -m shm.synthetic`) in `folder`."""
    subprocess.run([sys.executable, "-m", "shm.synthetic", "--out", str(folder), "--n", str(count),
                    "--size", str(size)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return folder


def summarise(rows: list[dict]) -> list[dict]:
    """Per (stage, setting), in the order first seen: the median of every timed step, each round's
    median, and the median relative to the same stage's `REFERENCE` setting."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["stage"], row["setting"]), []).append(row)
    medians = {key: statistics.median(s for row in group for s in row["seconds"]) for key, group in groups.items()}
    summary = []
    for (stage, setting), group in groups.items():
        median = medians[(stage, setting)]
        reference = medians.get((stage, REFERENCE))
        summary.append({"stage": stage, "setting": setting, "median_s": median, "steps_per_s": 1 / median,
                        "round_medians": [statistics.median(row["seconds"]) for row in group],
                        "steps": sum(len(row["seconds"]) for row in group),
                        "relative": None if reference is None else median / reference,
                        "trainable_variables": group[0]["trainable_variables"],
                        "view_sizes": group[0]["view_sizes"]})
    return summary


def render(summary: list[dict], failures: list[str], command: str, load_before: float | None,
           load_after: float | None, args: argparse.Namespace) -> str:
    data = f"`{', '.join(args.data_dir)}`" if args.data_dir else "synthetic people (`shm.synthetic`)"
    lines = [START_MARK, "## Training steps", "",
             f"`{command}`, {datetime.date.today().isoformat()}; {machine_description(load_before, load_after)}.",
             f"Preset {args.preset}, batch {args.batch_size}, {args.batches} batches of the stage's training pipeline "
             f"on {data} held in memory; {args.rounds} rounds of the settings in turn, each {args.steps} timed steps "
             f"after {args.warmup} warm-up steps in a process of its own (`shm.training.fit_stage`, Adam). Median "
             f"over every timed step; relative = median / the same stage's median with {REFERENCE} (below 1: faster).",
             "", "| stage | setting | views (H x W) | trainable variables | median s / step | steps / s | "
             "round medians (s) | relative |", "| --- | --- | --- | ---: | ---: | ---: | --- | ---: |"]
    for row in summary:
        relative = "" if row["relative"] is None else f"{row['relative']:.2f}"
        lines.append(f"| {row['stage']} | {row['setting']} | {', '.join(row['view_sizes'])} | "
                     f"{row['trainable_variables']} | {row['median_s']:.3f} | {row['steps_per_s']:.2f} | "
                     f"{', '.join(f'{s:.3f}' for s in row['round_medians'])} | {relative} |")
    lines += [f"\nfailed: {failure}" for failure in failures]
    lines.append(END_MARK)
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=["tnet", "shm"],
                        help="training stages to time (default: tnet shm)")
    parser.add_argument("--settings", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS),
                        help="settings to compare, run in this order in every round (default: all)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of every stage and setting (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per child (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed steps first; the first traces the graph (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=2,
                        help="distinct batches held in memory and cycled (default: %(default)s)")
    parser.add_argument("--preset", default="lite", help="model preset (default: %(default)s)")
    parser.add_argument("--working-size", type=int, default=None,
                        help="longer side of the training views (default: the preset's working size, 320 for lite)")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch size (default: %(default)s)")
    parser.add_argument("--data-dir", nargs="+", default=None, metavar="FOLDER[:WEIGHT]",
                        help="training data folders as the stages take them (default: synthetic people at the "
                             "working size, made in a temporary folder)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="page whose training_steps section is replaced (default: docs/benchmarks.md)")
    parser.add_argument("--worker", nargs=2, metavar=("STAGE", "SETTING"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for flag in ("rounds", "steps", "batches", "batch_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def worker_command(args: argparse.Namespace, stage: str, setting: str, data_dirs: list[str]) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", stage, setting, "--data-dir", *data_dirs,
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--batches", str(args.batches),
               "--preset", args.preset, "--batch-size", str(args.batch_size)]
    return command + (["--working-size", str(args.working_size)] if args.working_size else [])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        stage, setting = args.worker
        print(json.dumps(step_seconds(stage, setting, args)))
        return 0
    from models.presets import PRESETS  # TensorFlow-free

    working_size = args.working_size or PRESETS[args.preset]["working_size"]
    load_before, rows, failures = load_average(), [], []
    with tempfile.TemporaryDirectory() as scratch:
        # Photos twice the working size, as real ones are larger: most training views are then seen
        # at the working size (a view is never enlarged beyond its pixels).
        data_dirs = args.data_dir or [str(synthetic_data(Path(scratch) / "data", args.batch_size * args.batches,
                                                         2 * working_size))]
        for round_ in range(1, args.rounds + 1):
            for stage in args.stages:
                for setting in args.settings:
                    label = f"round {round_}, {stage}, {setting}"
                    try:
                        row = run_worker_process(worker_command(args, stage, setting, data_dirs), label,
                                                 env=child_environment(SETTINGS[setting][0]))
                    except RuntimeError as error:
                        failures.append(str(error))
                        print(f"error: {error}", file=sys.stderr)
                        continue
                    rows.append(row)
                    print(f"{label}: median {statistics.median(row['seconds']):.3f} s/step "
                          f"({row['worker_seconds']:.0f} s in all)", flush=True)
    command = "python benchmarks/training_steps.py" + (" " + " ".join(sys.argv[1:] if argv is None else argv)).rstrip()
    section = render(summarise(rows), failures, command, load_before, load_average(), args)
    write_section(args.output, section, START_MARK, END_MARK)
    print(section)
    print(f"wrote {args.output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
