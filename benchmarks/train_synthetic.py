"""Training benchmarks on synthetic data; results go to docs/training.md.

A time-boxed end-to-end run of the light SHM (ImageNet MobileNetV2 T-Net, random slim M-Net) on
data from `python -m shm.synthetic`, with the validation SAD/MSE before and after:

    python benchmarks/train_synthetic.py --minutes 20

The seconds per training step of each preset's stages (random in-memory batches):

    python benchmarks/train_synthetic.py --step-times --batch-size 4

Both rewrite their own section of docs/training.md (between `<!-- name -->` markers); the run's
checkpoints, log.csv and curves.png stay in --out-dir.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shm.console import quiet_tensorflow  # noqa: E402

quiet_tensorflow()
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models.light_tnet import build_light_tnet  # noqa: E402
from models.presets import PRESETS  # noqa: E402
from models.shm import build_shm  # noqa: E402
from shm import data  # noqa: E402
from shm.training import StageTrainer, TrainOptions, fit_stage  # noqa: E402
from shm.training.stages import build_mnet_for_training, build_tnet_for_training  # noqa: E402
from report import machine_description, write_section  # noqa: E402

DOC = ROOT / "docs" / "training.md"


class TimeLimit(keras.callbacks.Callback):
    """Ends training at the first batch after `seconds` (the epoch still validates and checkpoints)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.deadline = time.monotonic() + seconds

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() >= self.deadline:
            self.model.stop_training = True


def write_doc_section(name: str, text: str) -> None:
    """`report.write_section` of docs/training.md's section between `<!-- name -->` and `<!-- /name -->`."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    write_section(DOC, f"{start}\n{text.strip()}\n{end}", start, end)


def synthetic_samples(folder: Path, n: int, size: int) -> list:
    subprocess.run([sys.executable, "-m", "shm.synthetic", "--out", str(folder), "--n", str(n), "--size", str(size)],
                   cwd=ROOT, check=True)
    return list(data.discover_samples(folder))


def run_training(args: argparse.Namespace) -> None:
    samples = synthetic_samples(Path(tempfile.mkdtemp(prefix="shm_bench_")), args.n_train + args.n_val, args.size)
    train_samples, val_samples = samples[:args.n_train], samples[args.n_train:]
    train = data.make_shm_dataset(train_samples, args.size, args.batch_size, seed=0)
    val = data.make_shm_dataset(val_samples, args.size, args.batch_size, training=False)

    keras.utils.set_random_seed(0)
    trainer = StageTrainer(build_shm("lite", tnet=build_light_tnet(backbone_weights="imagenet")), "shm")
    trainer.compile(optimizer="adam")
    before = trainer.evaluate(val, return_dict=True, verbose=0)
    started = time.monotonic()
    out_dir = args.out_dir / time.strftime("%Y%m%d-%H%M%S")
    fit_stage(lambda: trainer, train, val,
              TrainOptions(data_dir=(), out_dir=out_dir, epochs=args.max_epochs, lr=args.lr,
                           steps_per_epoch=args.steps_per_epoch),
              extra_callbacks=[TimeLimit(args.minutes * 60)])
    minutes = (time.monotonic() - started) / 60
    after = trainer.evaluate(val, return_dict=True, verbose=0)
    steps = int(trainer.optimizer.iterations.numpy())
    command = (f"python benchmarks/train_synthetic.py --minutes {args.minutes:g} --size {args.size} "
               f"--batch-size {args.batch_size} --n-train {args.n_train} --n-val {args.n_val}")
    write_doc_section("benchmark-train-synthetic", f"""
Light SHM trained end to end for {minutes:.1f} minutes ({steps} steps of batch {args.batch_size} at
{args.size}x{args.size}, Adam from {args.lr:g}) on {args.n_train} synthetic photos,
validated on {args.n_val} others ({machine_description()}, {time.strftime('%Y-%m-%d')}):

| | validation SAD (whole image, /1000) | validation MSE | validation loss |
| --- | --- | --- | --- |
| before | {before['sad']:.3f} | {before['mse']:.4f} | {before['loss']:.4f} |
| after | {after['sad']:.3f} | {after['mse']:.4f} | {after['loss']:.4f} |

Command: `{command}`
""")
    print(f"validation SAD {before['sad']:.3f} -> {after['sad']:.3f} after {steps} steps; "
          f"results in {DOC}, the run in {out_dir}")


def step_seconds(trainer: StageTrainer, batch: dict, steps: int) -> float:
    """Median seconds of one training step after two warm-up steps (graph tracing)."""
    trainer.compile(optimizer="adam")
    batch = {key: tf.constant(value) for key, value in batch.items()}
    times = []
    for _ in range(steps + 2):
        started = time.perf_counter()
        trainer.train_on_batch(batch)
        times.append(time.perf_counter() - started)
    return float(np.median(times[2:]))


def random_batch(batch_size: int, size: int) -> dict:
    rng = np.random.default_rng(0)
    image = rng.random((batch_size, size, size, 3), np.float32)
    classes = rng.integers(0, 3, (batch_size, size, size))
    return {"image": image, "trimap": np.eye(3, dtype=np.float32)[classes],
            "alpha": rng.random((batch_size, size, size, 1), np.float32), "fg": image, "bg": image,
            "has_fg_bg": np.zeros(batch_size, np.float32)}


def run_step_times(args: argparse.Namespace) -> None:
    # T-Nets at their preset's size (pspnet50's own 473), the M-Nets and the whole model at one size
    # for both presets, so that their times compare.
    tnet_size = {preset: PRESETS[preset]["tnet_size"] or PRESETS[preset]["working_size"] for preset in PRESETS}
    common = PRESETS["lite"]["working_size"]
    cases = [("lite", "tnet", tnet_size["lite"]), ("lite", "mnet", common), ("lite", "shm", common),
             ("pspnet50", "tnet", tnet_size["pspnet50"]), ("pspnet50", "mnet", common)]
    rows = []
    for preset, stage, size in cases:
        if args.presets and preset not in args.presets:
            continue
        keras.utils.set_random_seed(0)
        if stage == "tnet":
            network, tnet = build_tnet_for_training(preset, imagenet_weights="none")
            trainer = StageTrainer(network, "tnet", saved_network=tnet)
        elif stage == "mnet":
            trainer = StageTrainer(build_mnet_for_training(preset, "none"), "mnet")
        else:
            trainer = StageTrainer(build_shm(preset), "shm")
        seconds = step_seconds(trainer, random_batch(args.batch_size, size), args.steps)
        rows.append(f"| {preset} | {stage} | {size}x{size} | {args.batch_size} | {seconds:.2f} |")
        print(rows[-1], flush=True)
        keras.backend.clear_session()
    presets = " ".join(args.presets) if args.presets else ""
    command = (f"python benchmarks/train_synthetic.py --step-times --batch-size {args.batch_size} "
               f"--steps {args.steps}" + (f" --presets {presets}" if presets else ""))
    write_doc_section("benchmark-step-times", f"""
Seconds per training step (median of {args.steps} after 2 warm-up steps; {machine_description()}, shared with
other jobs while measured, so treat them as upper bounds; {time.strftime('%Y-%m-%d')}):

| preset | stage | size | batch | s / step |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Command: `{command}`
""")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step-times", action="store_true",
                        help="measure the seconds per training step of each preset instead of training")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget (default: %(default)s)")
    parser.add_argument("--size", type=int, default=160, help="synthetic photo and training size, a multiple "
                        "of 32 (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (default: %(default)s)")
    parser.add_argument("--n-train", type=int, default=400, help="synthetic training photos (default: %(default)s)")
    parser.add_argument("--n-val", type=int, default=40, help="synthetic validation photos (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's initial rate (default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=int, default=100,
                        help="steps between validations and checkpoints (default: %(default)s)")
    parser.add_argument("--max-epochs", type=int, default=1000,
                        help="epochs of the cosine schedule; the time budget usually ends training first "
                             "(default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=Path(tempfile.gettempdir()) / "shm_train_synthetic",
                        help="a new timestamped folder in it gets the run's checkpoints, log.csv and curves.png "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="--step-times: timed steps per case (default: %(default)s)")
    parser.add_argument("--presets", nargs="+", choices=("lite", "pspnet50"),
                        help="--step-times: only these presets (default: both)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step_times:
        run_step_times(args)
    else:
        run_training(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
