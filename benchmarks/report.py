"""What the benchmark scripts share: the machine they ran on, and replacing a marked section of a
docs page atomically. TensorFlow-free, so a script can describe the machine without importing it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shm.io import atomic_path  # noqa: E402

# TensorFlow reads it once, at import: children that measure with oneDNN off get it in their environment.
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def tensorflow_environment(onednn: bool) -> dict[str, str]:
    """This process's environment for a child that imports TensorFlow with oneDNN on (its default)
    or off, whatever this process was started with."""
    environment = {key: value for key, value in os.environ.items() if key != ONEDNN_VARIABLE}
    if not onednn:
        environment[ONEDNN_VARIABLE] = "0"
    return environment

# (distribution, name shown): the runtimes whose versions decide the figures.
RUNTIMES = (("tensorflow", "TensorFlow"), ("keras", "Keras"), ("ai-edge-litert", "LiteRT"),
            ("onnxruntime", "onnxruntime"), ("apache-beam", "Apache Beam"))


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.MULTILINE)
        if names:
            return names[0]
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Total RAM in GiB (Linux), or None where /proc/meminfo does not exist."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    kib = re.search(r"^MemTotal:\s*(\d+)\s*kB", meminfo.read_text(), flags=re.MULTILINE)
    return int(kib.group(1)) / 2**20 if kib else None


def load_average() -> float | None:
    """The 1-minute load average, or None where the OS has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def runtime_versions() -> str:
    """`Python 3.11.7, TensorFlow 2.21.0, Keras 3.15.1, ...` (runtimes not installed are left out)."""
    versions = [f"Python {platform.python_version()}"]
    for distribution, name in RUNTIMES:
        try:
            versions.append(f"{name} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(versions)


def machine_description(load_before: float | None = None, load_after: float | None = None) -> str:
    """CPU, cores, RAM, the load averages given and the runtime versions, in one sentence."""
    parts = [cpu_model(), f"{os.cpu_count()} cores"]
    gib = memory_gib()
    if gib is not None:
        parts.append(f"{gib:.0f} GiB RAM")
    loads = [f"{load:.1f} {when}" for load, when in ((load_before, "before"), (load_after, "after"))
             if load is not None]
    if loads:
        parts.append("load average " + ", ".join(loads))
    return ", ".join(parts) + "; " + runtime_versions()


def write_section(path: Path, section: str, start_mark: str, end_mark: str) -> None:
    """Replace what lies between `start_mark` and `end_mark` in `path` by `section` (which starts
    and ends with them), keeping the rest of the page; append it when the page has no such section."""
    text = path.read_text() if path.exists() else ""
    if start_mark in text and end_mark in text:
        before, rest = text.split(start_mark, 1)
        text = before + section + rest.split(end_mark, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n" if text.strip() else section + "\n"
    with atomic_path(path) as temporary:
        temporary.write_text(text)
