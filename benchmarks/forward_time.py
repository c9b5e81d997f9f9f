"""CPU forward time (batch 1) of the T-Net, the M-Net and the whole model of each preset.

Median of `--repeats` calls of a compiled tf.function after `--warmup` calls, at each preset's
working size. Writes the table, the command and the machine into `docs/models.md` between the
`forward_time` markers (atomically), and prints it.

Example:
    python benchmarks/forward_time.py
    python benchmarks/forward_time.py --presets lite --repeats 9 --output /tmp/models.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tensorflow as tf  # noqa: E402

from models.presets import PRESETS  # noqa: E402
from models.profiling import forward_time_ms, preset_parts  # noqa: E402
from shm.io import atomic_path  # noqa: E402

START_MARK = "<!-- forward_time:start -->"
END_MARK = "<!-- forward_time:end -->"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.MULTILINE)
        cpu = names[0] if names else cpu
    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {os.cpu_count()} cores{load}; Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}")


def measure(presets: list[str], repeats: int, warmup: int) -> list[tuple[str, str, str, float]]:
    """(preset, part, input shape, median ms) for the T-Net, M-Net and whole model of each preset."""
    rows = []
    for preset in presets:
        _, parts = preset_parts(preset)
        for part, (model, shape) in parts.items():
            milliseconds = forward_time_ms(model, shape, repeats=repeats, warmup=warmup)
            rows.append((preset, part, "x".join(map(str, shape[1:])), milliseconds))
            print(f"{preset:<10} {part:<6} {rows[-1][2]:<12} {milliseconds:8.1f} ms", flush=True)
    return rows


def markdown_table(rows: list[tuple[str, str, str, float]], command: str, repeats: int, warmup: int) -> str:
    lines = [
        START_MARK,
        f"Measured {datetime.date.today().isoformat()} with `{command}` on {machine_description()}.",
        f"Median of {repeats} calls after {warmup} warm-up calls, batch 1, float32, CPU.",
        "",
        "| preset | part | input | forward time (ms) |",
        "| --- | --- | --- | ---: |",
    ]
    lines += [f"| {preset} | {part} | {shape} | {ms:.1f} |" for preset, part, shape, ms in rows]
    lines.append(END_MARK)
    return "\n".join(lines)


def write_table(path: Path, table: str) -> None:
    """Replace the marked table in `path` (or append it when the page has none yet)."""
    text = path.read_text() if path.exists() else ""
    if START_MARK in text and END_MARK in text:
        before, rest = text.split(START_MARK, 1)
        text = before + table + rest.split(END_MARK, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + table + "\n"
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=list(PRESETS),
                        help="presets to time (default: all: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls; the median is reported (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "models.md",
                        help="markdown page whose forward_time table is replaced (default: docs/models.md)")
    args = parser.parse_args(argv)
    rows = measure(args.presets, args.repeats, args.warmup)
    command = "python benchmarks/forward_time.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    write_table(args.output, markdown_table(rows, command, args.repeats, args.warmup))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
