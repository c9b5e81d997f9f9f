"""The library (`shm`, `models`) as a package for Beam's remote workers (docs/beam.md):

    python matte_beam.py ... --runner DataflowRunner --setup_file ./setup.py

The runner builds a source package from this file and installs it on every worker with what the
default ONNX path imports; the versions are requirements.txt's. Workers running TFLite or Keras
models need more (`--requirements_file`, docs/beam.md). For this machine, use requirements.txt.
"""

import re
from pathlib import Path

# What `shm.beam` (with the `shm.inference`, `shm.jobs` and `shm.outputs` it uses) imports on a worker for an
# ONNX model (Beam is in the worker's image).
WORKER_PACKAGES = ("numpy", "opencv-python-headless", "pillow", "tqdm", "onnxruntime")


def worker_requirements() -> list[str]:
    """requirements.txt's lines (comments dropped) of WORKER_PACKAGES."""
    lines = (Path(__file__).resolve().parent / "requirements.txt").read_text().splitlines()
    requirements = [line.split("#")[0].strip() for line in lines]
    return [line for line in requirements if line and re.split(r"[<>=!~\[ ;]", line)[0] in WORKER_PACKAGES]


if __name__ == "__main__":
    import setuptools

    setuptools.setup(name="shm-keras", version="0.1.0", description="Semantic Human Matting (library for Beam workers)",
                     packages=setuptools.find_packages(include=["shm", "shm.*", "models", "models.*"]),
                     install_requires=worker_requirements(), python_requires=">=3.10")
