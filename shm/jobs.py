"""Matting photos, videos and folders of them into output files: what `inference.py` runs.

A `Job` is one photo or video and where its outputs go (`collect_jobs` plans a folder's, never two
inputs on one output name); `matte_jobs` mattes them all with a `shm.inference.Matter`, one error
line per failing file, and sums up the run (`Summary`). A folder keeps a record of the settings
that made its outputs (`check_output_settings`), so that one folder never mixes two models' mattes.
The pictures themselves are `shm.outputs`'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from shm.batch import Interrupted, run_per_file
from shm.console import progress, report
from shm.inference import Matter, ModelOutputError, StageTimes
from shm.io import IMAGE_EXTENSIONS, atomic_folder, atomic_path, read_image
from shm.outputs import (FOREGROUND_KINDS, IMAGE_OUTPUTS, OUTPUT_KINDS, STANDARD_STREAM, VIDEO_OUTPUTS,
                         image_output_suffixes, looks_like_output, output_array, write_image_outputs)
from shm.video import VIDEO_EXTENSIONS, FrameSource, VideoError, VideoWriter


@dataclasses.dataclass(frozen=True)
class Job:
    """One photo or video. `output_stem` + a suffix of IMAGE_OUTPUTS / VIDEO_OUTPUTS = an output;
    or, when `output_file` is set, that one file (`-`: standard output) holds the only output.
    `frame_rate`: `path` is a folder of images, the frames of one video at that rate."""

    label: str
    output_stem: Path
    path: Path | None = None
    image: np.ndarray | None = dataclasses.field(default=None, compare=False)
    output_file: Path | None = None
    frame_rate: float | None = None

    @property
    def is_video(self) -> bool:
        return self.frame_rate is not None or (self.path is not None and self.path.suffix.lower() in VIDEO_EXTENSIONS)

    def load_image(self) -> np.ndarray:
        return self.image if self.image is not None else read_image(self.path)


@dataclasses.dataclass
class OutputOptions:
    """Which outputs to write, and where.

    `kinds`: the outputs to write (of OUTPUT_KINDS; each medium takes those it has), or None for
    the defaults: photos `alpha` and `rgba` (+ `composite` with a `background`, + `trimap` with
    `save_trimap`), videos `alpha` and `composite`. `quiet`: no progress bar, no timing lines.
    """

    output_dir: Path
    background: np.ndarray | None = None  # parse_background's result
    save_trimap: bool = False
    overwrite: bool = False
    print_timings: bool = False
    kinds: tuple[str, ...] | None = None
    quiet: bool = False

    def __post_init__(self):
        unknown = sorted(set(self.kinds or ()) - set(OUTPUT_KINDS))
        if unknown:
            raise ValueError(f"unknown output {', '.join(unknown)}; choose from {', '.join(OUTPUT_KINDS)}")


def collect_jobs(input_path: str | os.PathLike, output_dir: str | os.PathLike,
                 recursive: bool = False, frame_rate: float | None = None) -> tuple[list[Job], list[Path]]:
    """The jobs for a photo, a video or a folder, and the folder's files that are not media.

    Folder outputs keep the subfolders (with `recursive`); inputs whose output names would
    collide get unique ones (`unique_output_stems`): a job whose `output_stem` differs from its
    file's stem was renamed. Files inside `output_dir` named like outputs (`*_alpha.png`, ...)
    are earlier results, not inputs. With `frame_rate`, the folder's images (sorted by name) are
    the frames of one video. A folder without any photo or video raises `ValueError` ("no images
    or videos found").
    """
    input_path, output_dir = Path(input_path), Path(output_dir)
    if frame_rate is not None:
        if not input_path.is_dir():
            raise ValueError(f"{input_path}: not a folder; a frame rate makes the input folder's images one video")
        return [Job(input_path.name, output_dir / input_path.resolve().name, path=input_path,
                    frame_rate=frame_rate)], []
    if input_path.is_file():
        return [Job(input_path.name, output_dir / input_path.stem, path=input_path)], []
    if not input_path.is_dir():
        raise FileNotFoundError(f"{input_path}: no such file or folder")
    output_resolved = output_dir.resolve()
    media, ignored = [], []
    for path in sorted(input_path.glob("**/*" if recursive else "*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(input_path).parts):
            continue
        if output_resolved in path.resolve().parents and looks_like_output(path):
            continue
        suffix = path.suffix.lower()
        (media if suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS else ignored).append(path)
    if not media:
        others = f" ({len(ignored)} other files)" if ignored else ""
        subfolders = (" (subfolders are searched with --recursive)"
                      if not recursive and any(path.is_dir() for path in input_path.iterdir()) else "")
        raise ValueError(f"{input_path}: no images or videos found{others}{subfolders}")
    stems = unique_output_stems([path.relative_to(input_path) for path in media])
    jobs = [Job(str(path.relative_to(input_path)), output_dir / stem, path=path) for path, stem in zip(media, stems)]
    return jobs, ignored


def unique_output_stems(relative_paths: list[Path]) -> list[Path]:
    """One output stem per input path (relative to the input folder), all different even on a
    case-insensitive file system, planned before anything is written.

    A stem used once stays as it is (`b.png` -> `b`); inputs sharing a stem (`a.jpg`, `a.png`,
    `a.JPG`) keep their extension (`a_jpg`, `a_png`, `a_JPG_2`: the extension's case cannot
    tell outputs apart); a kept extension that meets another name (`b.jpg` + `b.png` +
    `b_jpg.png`) gets the next free number.
    """
    def key(stem: Path) -> str:
        return stem.as_posix().casefold()

    natural = [path.with_suffix("") for path in relative_paths]
    counts: dict[str, int] = {}
    for stem in natural:
        counts[key(stem)] = counts.get(key(stem), 0) + 1
    taken = {key(stem) for stem in natural if counts[key(stem)] == 1}
    stems = []
    for path, stem in zip(relative_paths, natural):
        if counts[key(stem)] > 1:
            base = stem.with_name(f"{stem.name}_{path.suffix.lstrip('.')}")
            stem, number = base, 1
            while key(stem) in taken:
                number += 1
                stem = base.with_name(f"{base.name}_{number}")
            taken.add(key(stem))
        stems.append(stem)
    return stems


def renamed_outputs(jobs: list[Job]) -> list[str]:
    """One line per job whose outputs do not take its file's stem (`unique_output_stems`)."""
    return [f"{job.label}: outputs named {job.output_stem.name}_* (another input has the same name)"
            for job in jobs if job.path is not None and job.output_stem.name != job.path.stem]


def output_kinds(job: Job, options: OutputOptions) -> list[str]:
    """The kinds of output a job writes (see `OutputOptions.kinds`); `ValueError` if none applies."""
    outputs = VIDEO_OUTPUTS if job.is_video else IMAGE_OUTPUTS
    if options.kinds is None:
        kinds = ["alpha", "composite"] if job.is_video else \
            list(image_output_suffixes(options.background is not None, options.save_trimap))
    else:
        kinds = [kind for kind in options.kinds if kind in outputs]
    medium = "a video" if job.is_video else "a photo"
    if not kinds:
        raise ValueError(f"{job.path or job.label}: none of the outputs asked for ({', '.join(options.kinds)}) "
                         f"applies to {medium} (it has {', '.join(outputs)})")
    if job.output_file is not None and len(kinds) != 1:
        raise ValueError(f"{job.output_file}: one output file takes one output, not {', '.join(kinds)}; "
                         "choose one with --outputs, or give a folder as --output")
    return kinds


def output_paths(job: Job, options: OutputOptions) -> dict[str, Path]:
    """Output files of a job by kind (`alpha`, `rgba`, `composite`, `foreground`, `trimap`; for
    videos `frames`, a folder)."""
    outputs = VIDEO_OUTPUTS if job.is_video else IMAGE_OUTPUTS
    kinds = output_kinds(job, options)
    if job.output_file is None:
        return {kind: Path(f"{job.output_stem}{outputs[kind]}") for kind in kinds}
    kind, file = kinds[0], job.output_file
    expected = Path(outputs[kind]).suffix
    if str(file) == STANDARD_STREAM:
        if job.is_video:
            raise ValueError(f"{job.path}: a video cannot go to standard output; give a file or folder as --output")
    elif file.suffix.lower() != expected:
        raise ValueError(f"{file}: the {kind} output of {'a video' if job.is_video else 'a photo'} is "
                         f"{expected.lstrip('.').upper() or 'a folder'}; name the file {file.stem}{expected}")
    return {kind: file}


def matte_image_job(matter: Matter, job: Job, options: OutputOptions) -> StageTimes | None:
    """Matte one photo and write its outputs; None when every output exists already."""
    paths = output_paths(job, options)
    if not options.overwrite and all(path.exists() and str(path) != STANDARD_STREAM for path in paths.values()):
        return None
    image = job.load_image()
    result = matter.matte(image, foreground=bool(FOREGROUND_KINDS & paths.keys()), trimap="trimap" in paths)
    result.times.writing = write_image_outputs(result, image, paths, options.background, options.overwrite)
    return result.times


def matte_video_job(matter: Matter, job: Job, options: OutputOptions) -> tuple[StageTimes, int] | None:
    """Matte every frame of a video (or of a folder of frames) into its video outputs (same frame
    rate, the input's audio; `shm.video`). Outputs that exist are kept unless `overwrite`.

    Returns the summed times and the number of frames; None when every output exists already.
    """
    paths = {kind: path for kind, path in output_paths(job, options).items()
             if options.overwrite or not path.exists()}
    if not paths:
        return None
    source = (FrameSource.from_images(job.path, job.frame_rate) if job.frame_rate is not None
              else FrameSource.from_video(job.path))
    foreground = bool(FOREGROUND_KINDS & paths.keys())
    total, frames = StageTimes(), 0
    with contextlib.ExitStack() as stack:
        writers = {}
        for kind, path in paths.items():
            temporary = stack.enter_context(atomic_folder(path) if kind == "frames" else atomic_path(path))
            writers[kind] = VideoWriter(temporary, kind, source.frame_rate, source.audio_path)
            stack.callback(writers[kind].abort)  # runs before the rename of a failed run's files
        bar = stack.enter_context(progress(total=source.frame_count, desc=job.label, unit="frame", leave=False,
                                           position=1, quiet=options.quiet))
        for frame in source:
            result = matter.matte(frame, foreground=foreground)
            start = time.perf_counter()
            for kind, writer in writers.items():
                writer.write(output_array(kind, result, frame, options.background))
            result.times.writing = time.perf_counter() - start
            total, frames = total + result.times, frames + 1
            bar.update()
        if frames == 0:
            raise VideoError(f"{job.path}: no frame could be read (corrupt file or unsupported codec)")
        start = time.perf_counter()
        for writer in writers.values():
            writer.close()
        total.writing += time.perf_counter() - start
    if source.frame_count is not None and frames < source.frame_count:
        # The outputs hold every frame there was; the run still fails so that nobody takes them for whole.
        raise VideoError(f"{job.path}: only {frames} of the {source.frame_count} frames its header announces could "
                         f"be read (truncated or corrupt file); its outputs hold those {frames} frames")
    return total, frames


# ---------------------------------------------------------------------------------------------------
# What made the outputs of a folder

# Hidden, so folder runs never take it for an input.
SETTINGS_RECORD = ".shm_inference.json"


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of every file of a directory (a SavedModel) in name order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def output_settings(matter: Matter, background: np.ndarray | None) -> dict:
    """What decides the pixels of a run's outputs: the model file's content, the network size, the
    guided filter, the clamp, and the background of composites."""
    network = (f"fixed {matter.fixed_size[0]}x{matter.fixed_size[1]}" if matter.fixed_size
               else f"longer side {matter.working_size}")
    return {"model": f"{matter.model_file.name} sha256:{file_digest(matter.model_file)[:16]}",
            "network": network, "guided_filter": [matter.guided_radius, matter.guided_eps], "clamp": matter.clamp,
            "background": None if background is None
            else f"{background.shape} sha256:{hashlib.sha256(background.tobytes()).hexdigest()[:16]}"}


def check_output_settings(matter: Matter, jobs: list[Job], options: OutputOptions) -> str | None:
    """Keep one folder's outputs from mixing two settings (another model, size or background), then
    record this run's settings in the folder.

    Raises `ValueError` naming the folder when outputs this run would keep (no `overwrite`) were
    made with other settings: a background matters only where a composite exists. Returns a note
    when existing outputs have no record (older runs), else None.
    """
    if matter.model_file is None:
        return None
    settings = output_settings(matter, options.background)
    record_path = Path(options.output_dir) / SETTINGS_RECORD
    existing = [path for job in jobs for path in output_paths(job, options).values() if path.exists()]
    note = None
    if existing and not options.overwrite:
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = None
        if record is None:
            note = (f"{options.output_dir}: {len(existing)} existing outputs have no record of the settings that "
                    "made them; they are kept as they are (--overwrite replaces them)")
        else:
            composites = any(path.name.endswith((IMAGE_OUTPUTS["composite"], VIDEO_OUTPUTS["composite"]))
                             for path in existing)
            differing = [name for name in settings if record.get(name) != settings[name]
                         and (name != "background" or composites)]
            if differing:
                shown = "; ".join(f"{name} {record.get(name)} there, {settings[name]} now" for name in differing)
                raise ValueError(f"{options.output_dir}: holds outputs made with other settings ({shown}); give "
                                 "--overwrite to replace them or choose another --output")
    with atomic_path(record_path) as temporary:
        temporary.write_text(json.dumps(settings, indent=2) + "\n")
    return note


# ---------------------------------------------------------------------------------------------------
# Runs over many jobs

@dataclasses.dataclass
class Summary:
    """What a run did: counts, errors and the summed stage times of the matted images/frames."""

    processed: int = 0
    skipped: int = 0
    ignored: int = 0
    frames: int = 0
    times: StageTimes = dataclasses.field(default_factory=StageTimes)
    errors: list[str] = dataclasses.field(default_factory=list)
    interrupted: bool = False  # Ctrl-C stopped the run; the counts are what was done before

    @property
    def failed(self) -> int:
        return len(self.errors)

    def line(self) -> str:
        text = (f"{self.processed} processed, {self.skipped} skipped (outputs exist), "
                f"{self.failed} failed")
        if self.ignored:
            text += f", {self.ignored} non-image files ignored"
        if self.frames:
            text += f"; per image/frame {self.times.describe(self.frames)}"
        return f"interrupted: {text}" if self.interrupted else text


def error_line(error: Exception, name: str | os.PathLike) -> str:
    """One line for a job that failed: a `ValueError` / `OSError`'s message (ours name the file),
    a `ModelOutputError` or any other error (cv2.error, a TF error) after `name` (the latter as
    `Type: the last line of its message`)."""
    if isinstance(error, ModelOutputError):
        return f"{name}: {error}"
    if isinstance(error, (ValueError, OSError)):
        return str(error)
    return f"{name}: {describe_failure(error)}"


def matte_jobs(matter: Matter, jobs: list[Job], options: OutputOptions) -> Summary:
    """Matte every job with a progress bar; a failing job prints one line and the rest go on."""
    summary = Summary()

    def run(job: Job) -> None:
        try:
            if job.is_video:
                outcome = matte_video_job(matter, job, options)
                times, frames = outcome if outcome is not None else (None, 0)
            else:
                times, frames = matte_image_job(matter, job, options), 1
        except ModelOutputError as error:
            raise ValueError(error_line(error, job.path or job.label)) from None
        except (ValueError, OSError):
            raise
        except Exception as error:  # e.g. cv2.error or a TF error: still one line, and go on
            raise ValueError(error_line(error, job.path or job.label)) from None
        if times is None:
            summary.skipped += 1
            return
        summary.processed += 1
        summary.frames += frames
        summary.times = summary.times + times
        if options.print_timings:
            report(f"{job.label}: {times.describe(frames)}", options.quiet, file=sys.stderr)

    try:
        summary.errors = run_per_file(run, jobs, description="matting", quiet=options.quiet)
    except Interrupted as stop:
        summary.errors, summary.interrupted = stop.errors, True
    return summary


def describe_failure(error: Exception) -> str:
    """One line for an unexpected error while matting: "out of memory", "OpenCV: <its reason>",
    or the exception's name and last line."""
    if isinstance(error, MemoryError) or (isinstance(error, cv2.error) and error.code == cv2.Error.StsNoMem):
        return "out of memory"
    if isinstance(error, cv2.error):
        return f"OpenCV failed in {error.func} ({error.err})"
    reason = (str(error).strip().splitlines() or [""])[-1][:200]
    return f"{type(error).__name__}: {reason}"
