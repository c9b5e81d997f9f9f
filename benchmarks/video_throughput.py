"""Frames per second of video matting with the shipped model, end to end (decode, network, guided
upsampling, foreground colours, encoding, audio), for each set of video outputs.

Makes an H.264 + AAC clip per size from synthetic people (`shm.synthetic`), then times
`shm.jobs.matte_video_job` on it (as `inference.py --input clip.mp4` does) for: the default
outputs (alpha + composite, H.264), the cut-out with alpha (VP9 WebM), and alpha alone
(`--only-alpha`, no foreground colours). Replaces the section between `<!-- video:start -->` and
`<!-- video:end -->` of `--output`.

Example:
    nice -n 5 python benchmarks/video_throughput.py --frames 48 --output docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import load_average, machine_description, write_section  # noqa: E402
from shm.inference import Matter  # noqa: E402
from shm.jobs import Job, OutputOptions, matte_video_job  # noqa: E402
from shm.synthetic import synthetic_sample  # noqa: E402
from shm.video import VideoWriter  # noqa: E402

START_MARK = "<!-- video:start -->"
END_MARK = "<!-- video:end -->"
SIZES = ((480, 640), (720, 1280))
OUTPUT_SETS = {"alpha + composite (H.264, default)": ("alpha", "composite"),
               "rgba (VP9 WebM with alpha)": ("rgba",),
               "alpha only (--only-alpha)": ("alpha",)}
FRAME_RATE = 25


def make_clip(path: Path, height: int, width: int, frames: int) -> Path:
    """An H.264 clip of synthetic people drifting sideways, with a 440 Hz AAC tone as its audio."""
    tone = path.with_suffix(".wav")
    samples = (0.2 * 32767 * np.sin(2 * np.pi * 440 * np.arange(48000 * frames // FRAME_RATE) / 48000))
    with wave.open(str(tone), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(48000)
        handle.writeframes(samples.astype(np.int16).tobytes())
    person = np.rint(synthetic_sample(size=max(height, width) + frames * 4, seed=0).image * 255).astype(np.uint8)
    writer = VideoWriter(path, "composite", FRAME_RATE, audio_path=tone)
    for index in range(frames):
        writer.write(np.ascontiguousarray(person[:height, index * 4:index * 4 + width]))
    writer.close()
    return path


def measure(matter: Matter, clip: Path, kinds: tuple[str, ...], out_dir: Path) -> tuple[float, str]:
    """Frames per second of one run, and its per-frame stage times."""
    options = OutputOptions(out_dir, kinds=kinds, overwrite=True, quiet=True)
    start = time.perf_counter()
    times, frames = matte_video_job(matter, Job(clip.name, out_dir / clip.stem, path=clip), options)
    seconds = time.perf_counter() - start
    return frames / seconds, times.describe(frames)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48, help="frames per clip (default: 48)")
    parser.add_argument("--preset", default="lite", help="model preset, its shipped default model (default: lite)")
    parser.add_argument("--output", type=Path, default=None,
                        help="a Markdown page whose video section is replaced (default: print only)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    matter = Matter.from_preset(args.preset)
    matter.predict(np.zeros((480, 640, 3), np.uint8))  # warm the runtime up
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for height, width in SIZES:
            clip = make_clip(scratch / f"clip_{width}x{height}.mp4", height, width, args.frames)
            for name, kinds in OUTPUT_SETS.items():
                fps, stages = measure(matter, clip, kinds, scratch / "out")
                rows.append(f"| {width}x{height} | {name} | {fps:.1f} | {stages} |")
                print(rows[-1], flush=True)
    command = f"python benchmarks/video_throughput.py --frames {args.frames}"
    section = "\n".join([
        START_MARK,
        f"`{command}` ({datetime.date.today()}, {machine_description(load_before, load_average())}; "
        f"{args.preset} preset's default model, backend "
        f"{matter.runner.backend}; {args.frames}-frame H.264 + AAC clips at {FRAME_RATE} fps):",
        "",
        "| size | outputs | frames per second | per frame (s): total (stages) |",
        "| --- | --- | --- | --- |",
        *rows,
        END_MARK,
    ])
    if args.output is not None:
        write_section(args.output, section, START_MARK, END_MARK)
    else:
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
