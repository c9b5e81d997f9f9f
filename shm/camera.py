"""A live preview of a webcam matted onto a background (`inference.py --camera N`)."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from shm.compositing import fit_background
from shm.foreground import composite_uint8
from shm.inference import Matter
from shm.outputs import DEFAULT_BACKGROUND


def display_problem() -> str | None:
    """Why a preview window cannot open here, or None if it can."""
    if "GUI: NONE" in " ".join(cv2.getBuildInformation().split()):
        return ("this OpenCV is a headless build (no GUI): --camera needs a preview window; "
                "install opencv-python instead of opencv-python-headless")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set): --camera needs a screen for its preview window"
    return None


def run_camera(matter: Matter, index: int, background: np.ndarray | None) -> int:
    """Live preview of the webcam `index` composited onto `background` (q or Esc quits);
    returns the number of frames shown."""
    problem = display_problem()
    if problem:
        raise RuntimeError(problem)
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise OSError(f"camera {index}: cannot open it (no such camera or it is busy)")
    background = background if background is not None else DEFAULT_BACKGROUND
    window = f"shm-keras: camera {index} (q quits)"
    shown = 0
    try:
        while True:
            ok, frame_bgr = capture.read()
            if not ok:
                raise OSError(f"camera {index}: stopped delivering frames")
            frame = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            result = matter.matte(frame, foreground=True)
            mixed = composite_uint8(result.foreground, result.alpha, fit_background(background, *frame.shape[:2]))
            cv2.imshow(window, cv2.cvtColor(np.hstack([frame, mixed]), cv2.COLOR_RGB2BGR))
            shown += 1
            if (cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
                break
    finally:
        capture.release()
        cv2.destroyAllWindows()
    return shown
