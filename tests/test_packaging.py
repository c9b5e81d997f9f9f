"""pyproject.toml: `pip install .` gives matting without TensorFlow; the extras and requirements.txt agree.

The light install itself is proven here without a network: the default inference path (a photo
and a video with sound through the shipped ONNX model) runs in a fresh process, and every module
it imported must come from the standard library, this project, or the `dependencies` of
pyproject.toml and what those require. (docs/inference.md, "Install", gives the fresh-venv check.)
"""

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from PIL import Image

from video_helpers import write_clip

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OWN_MODULES = {"models", "shm", "inference"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement like `opencv-python-headless>=4.10,<6`."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _requirement_lines() -> set[str]:
    lines = (line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    return {line.replace(" ", "") for line in lines if line}


def test_requirements_txt_is_the_light_dependencies_plus_every_extra():
    packaged = set(PROJECT["dependencies"]) | {req for extra in PROJECT["optional-dependencies"].values() for req in extra}
    assert {req.replace(" ", "") for req in packaged} == _requirement_lines()
    light = {_name(req) for req in PROJECT["dependencies"]}
    assert "tensorflow" not in light and "keras" not in light and "onnxruntime" in light


def test_console_commands_and_shipped_files_exist():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for command, target in PROJECT["scripts"].items():
        module, function = target.split(":")
        assert module in setuptools["py-modules"], command
        tree = ast.parse((ROOT / f"{module}.py").read_text())
        assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, command
    for files in setuptools["data-files"].values():
        assert all((ROOT / name).is_file() for name in files)


def _with_requirements(names: set[str]) -> set[str]:
    """`names` and every distribution they require, transitively (as installed here)."""
    found, pending = set(), list(names)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(_name(requirement.name))
    return found


def test_the_default_inference_path_needs_only_the_light_dependencies(tmp_path):
    Image.new("RGB", (40, 30), "orange").save(tmp_path / "photo.png")
    write_clip(tmp_path / "clip.mp4", frames=2)
    code = ("import runpy, sys, json\n"
            "at_start = {name.split('.')[0] for name in sys.modules}  # e.g. site's .pth hooks\n"
            "photo, clip, out = sys.argv[1:]\n"
            "for target in (photo, clip):\n"
            "    sys.argv = ['inference.py', '--input', target, '--output', out, '--outputs', 'alpha,rgba,composite']\n"
            "    try:\n        runpy.run_path('inference.py', run_name='__main__')\n"
            "    except SystemExit as stop:\n        assert not stop.code, stop.code\n"
            "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules} - at_start)))")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "photo.png"), str(tmp_path / "clip.mp4"),
                          str(tmp_path / "out")], capture_output=True, text=True, check=True, cwd=ROOT)
    modules = set(json.loads(run.stdout.splitlines()[-1]))
    assert (tmp_path / "out" / "clip_rgba.webm").is_file() and (tmp_path / "out" / "photo_alpha.png").is_file()
    assert not {"tensorflow", "keras", "scipy", "skimage", "h5py"} & modules
    allowed = _with_requirements({_name(req) for req in PROJECT["dependencies"]})
    distributions = importlib.metadata.packages_distributions()
    third_party = modules - set(sys.stdlib_module_names) - OWN_MODULES - {"__main__"}
    needed = {_name(dist) for module in third_party for dist in distributions.get(module, [])}
    assert needed and needed <= allowed, needed - allowed
