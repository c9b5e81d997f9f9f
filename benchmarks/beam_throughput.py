"""Photos per second of matte_beam.py (Apache Beam's DirectRunner, 1 and 2 workers) and of
inference.py on the same photos, in one run, and where each one's time goes.

Each command runs in a new process (wall time includes start-up: imports, the model, Beam's
workers) on a folder of 1 photo and on a folder of `--photos` photos (scikit-image's astronaut
resized, shifted and brightened per file, as in benchmarks/performance.py); throughput after
start-up = (photos - 1) / (wall time of the big folder - wall time of the 1-photo folder). Stage
times per photo come from each command's summary line. Then the CPU time per photo (one process,
1 runtime thread), which the load of the machine changes little: the base of docs/beam.md's
million-photo estimate; and the network's CPU time per photo by batch size. The outputs of each pipeline run are
compared with inference.py's. The table replaces the section between `<!-- beam:start -->` and
`<!-- beam:end -->` of `--output`.

Example:
    python benchmarks/beam_throughput.py                      # 200 photos of 600x800, ~3 minutes on 2 cores
    python benchmarks/beam_throughput.py --photos 10 --size 120x160 --output /tmp/page.md
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from performance import astronaut_photo, photo_size, photo_variant, positive_int, run_child, write_jpeg  # noqa: E402
from report import load_average, machine_description, write_section  # noqa: E402

START_MARK = "<!-- beam:start -->"
END_MARK = "<!-- beam:end -->"
STAGES = ("reading", "network", "upsampling", "foreground", "writing")
BATCH_SIZES = (1, 2, 4, 8)
# (label, command after the interpreter; {input} / {output} filled in per folder)
COMMANDS = (
    ("inference.py", ["inference.py", "--input", "{input}", "--output", "{output}"]),
    ("matte_beam.py, 1 worker (in_memory)", ["matte_beam.py", "--input", "{input}", "--output", "{output}"]),
    ("matte_beam.py, 2 workers (multi_processing)",
     ["matte_beam.py", "--input", "{input}", "--output", "{output}", "--direct_num_workers", "2",
      "--direct_running_mode", "multi_processing"]),
)


def stage_seconds(summary: str) -> dict[str, float]:
    """Per-photo seconds by stage from a summary line of inference.py or matte_beam.py."""
    return {stage: float(value) for stage, value in re.findall(rf"\b({'|'.join(STAGES)}) (\d+\.\d+)", summary)}


def make_folder(folder: Path, count: int, size: tuple[int, int]) -> Path:
    folder.mkdir(parents=True)
    base = astronaut_photo(*size)
    for index in range(count):
        write_jpeg(folder / f"photo_{index:03d}.jpg", photo_variant(base, index))
    return folder


def max_alpha_difference(folder: Path, reference: Path) -> int:
    """The largest |alpha| difference (of 255) between two output folders' `*_alpha.png`."""
    names = sorted(path.name for path in reference.glob("*_alpha.png"))
    if sorted(path.name for path in folder.glob("*_alpha.png")) != names:
        raise RuntimeError(f"{folder}: not the same outputs as {reference}")
    return max(int(np.abs(np.asarray(Image.open(folder / name), np.int16)
                          - np.asarray(Image.open(reference / name), np.int16)).max()) for name in names)


def cpu_seconds_per_photo(folder: Path, output: Path) -> float:
    """Mean CPU time (this process, `time.process_time`) to matte and write one photo of `folder`
    with the default model on 1 runtime thread, as one process of a worker per vCPU does: what a
    vCPU-hour buys, whatever else runs on the machine."""
    from shm.inference import Matter
    from shm.jobs import OutputOptions, collect_jobs, matte_image_job

    matter = Matter.from_preset("lite", num_threads=1)
    jobs, _ = collect_jobs(folder, output)
    options = OutputOptions(output)
    matte_image_job(matter, jobs[0], options)  # warm-up: the runtime's first call plans its kernels
    start = time.process_time()
    for job in jobs[1:]:
        matte_image_job(matter, job, options)
    return (time.process_time() - start) / (len(jobs) - 1)


def network_cpu_seconds(batch_sizes: tuple[int, ...], size: tuple[int, int], repeats: int = 3) -> dict[int, float]:
    """CPU time per photo of the network alone (the default model, 1 runtime thread, random images
    at a `size` photo's network size) by batch size: what `--batch-size` buys on a CPU."""
    from shm.inference import Matter

    matter = Matter.from_preset("lite", num_threads=1)
    height, width = matter.network_size(size[1], size[0])
    images = np.random.default_rng(0).random((max(batch_sizes), height, width, 3), dtype=np.float32)
    seconds = {}
    for batch in batch_sizes:
        matter.runner(images[:batch])  # warm-up: kernels planned for this shape
        start = time.process_time()
        for _ in range(repeats):
            matter.runner(images[:batch])
        seconds[batch] = (time.process_time() - start) / (repeats * batch)
    return seconds


def measure(count: int, size: tuple[int, int], work: Path) -> list[dict]:
    """One row per command: wall times on 1 and `count` photos, throughput, stages, alpha difference."""
    small, big = make_folder(work / "one", 1, size), make_folder(work / "many", count, size)
    rows = []
    for index, (label, template) in enumerate(COMMANDS):
        runs = {}
        for name, folder in (("one", small), ("many", big)):
            output = work / f"out_{index}_{name}"
            command = [sys.executable, *(part.format(input=folder, output=output) for part in template)]
            run = run_child(command)
            if run.exit_code != 0:
                raise RuntimeError(f"{label} on {folder.name}: exit {run.exit_code}: {run.last_error_line()}")
            runs[name] = (run, output)
        (one, _), (many, output) = runs["one"], runs["many"]
        row = {"command": label, "startup_s": one.seconds, "wall_s": many.seconds,
               "photos_per_s": count / many.seconds, "peak_rss_mb": many.peak_rss_mb,
               "stages": stage_seconds(many.stdout)}
        if count > 1:
            row["photos_per_s_after_startup"] = (count - 1) / max(many.seconds - one.seconds, 1e-9)
        row["max_alpha_difference"] = max_alpha_difference(output, rows[0]["output"]) if rows else 0
        row["output"] = output
        rows.append(row)
        print(f"{label}: {row['photos_per_s']:.2f} photos/s ({many.seconds:.1f} s)", flush=True)
    return rows


def render_section(rows: list[dict], cpu_seconds: float, network_seconds: dict[int, float], count: int,
                   size: tuple[int, int], command: str, machine: str) -> str:
    lines = [START_MARK, "## Batch matting on Apache Beam (DirectRunner)", "",
             f"Measured {datetime.date.today().isoformat()} with `{command}` on {machine}. "
             f"{count} JPEGs of {size[0]}x{size[1]}, the default model (lite, ONNX Runtime); each command "
             "a new process; its runtime threads fit the worker (2 for one process, 1 each for two). "
             "Stage columns: seconds per photo inside one worker (with 2 workers, two photos are in flight "
             "at once, so they add up to about twice the wall time per photo); inference.py does not time "
             "reading.", "",
             "| command | wall, 1 photo (s) | wall (s) | photos/s | photos/s after start-up | "
             + " | ".join(f"{stage} (s)" for stage in STAGES) + " | peak RSS (MB) | max alpha diff vs inference.py |",
             "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in STAGES) + " | ---: | ---: |"]
    for row in rows:
        stages = " | ".join(f"{row['stages'][stage]:.3f}" if stage in row["stages"] else "-" for stage in STAGES)
        after = row.get("photos_per_s_after_startup")
        lines.append(f"| {row['command']} | {row['startup_s']:.1f} | {row['wall_s']:.1f} | "
                     f"{row['photos_per_s']:.2f} | {f'{after:.2f}' if after else '-'} | {stages} | "
                     f"{row['peak_rss_mb']:.0f} | {row['max_alpha_difference']}/255 |")
    lines += ["", f"CPU time per photo (decode, network on 1 thread, upsampling, foreground, writing; "
                  f"`time.process_time` over the big folder in one process): **{cpu_seconds:.3f} s**, i.e. "
                  f"{3600 / cpu_seconds:,.0f} photos per vCPU-hour (docs/beam.md turns it into a million "
                  "photos' throughput and cost).",
              "", "The network alone (1 thread), CPU time per photo by batch size: "
              + ", ".join(f"{batch}: {seconds:.4f} s" for batch, seconds in network_seconds.items())
              + ". On a CPU a larger batch buys nothing (its activations outgrow the caches): "
                "`--batch-size` is 1 by default, larger for accelerators."]
    return "\n".join(lines) + "\n" + END_MARK


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=positive_int, default=200, help="photos in the big folder (default: 200)")
    parser.add_argument("--size", type=photo_size, default=(600, 800), metavar="WxH",
                        help="size of each photo, width x height (default: 600x800)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="markdown page whose beam section is replaced, or appended when it has none "
                             "(default: docs/benchmarks.md)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/beam_throughput.py", *arguments])
    load_before = load_average()
    with tempfile.TemporaryDirectory() as work:
        try:
            rows = measure(args.photos, args.size, Path(work))
            cpu_seconds = cpu_seconds_per_photo(Path(work) / "many", Path(work) / "out_cpu")
            network_seconds = network_cpu_seconds(BATCH_SIZES, args.size)
        except RuntimeError as error:
            print(f"error: {error}; {args.output} left as it was", file=sys.stderr)
            return 1
    machine = machine_description(load_before, load_average())
    section = render_section(rows, cpu_seconds, network_seconds, args.photos, args.size, command, machine)
    write_section(args.output, section, START_MARK, END_MARK)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
