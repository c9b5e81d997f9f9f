"""Matting photos at scale on Apache Beam: `inference.py`'s outputs, on any Beam runner.

The pipeline (`build_pipeline`) lists the photos (a file pattern or a list file on any Beam
filesystem: local paths, `gs://`, `s3://` with Beam's extras), names their outputs exactly as
`inference.py` does (`shm.jobs.unique_output_stems`: subfolders kept, `a.jpg` + `a.png` give
`a_jpg`, `a_png`), drops the photos whose outputs all exist (unless `overwrite`), decodes them, runs the
network through Beam's `RunInference` with `MattingModelHandler` (a `shm.inference.Matter` loaded
once per worker process, photos of one network size batched together) and writes the PNGs with
`shm.outputs.write_image_outputs` to temporary names renamed into place. A photo that fails at
any step becomes one line of `OUTPUT/failures.jsonl` (`{"path", "stage", "error"}`) and the others
go on. Counters and stage times are Beam metrics in the namespace `shm` (`read_counts`).

Example (`matte_beam.py` is the command line over this module):
    from shm.beam import MattingSettings, PatternSource, run_matting
    counts = run_matting(PatternSource("photos/**"), MattingSettings(output="out"),
                         ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    print(counts.line())
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import re
import uuid
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from shm.backends import ModelFileError
from shm.inference import Matter, MatteResult, StageTimes
from shm.upsampling import DEFAULT_CLAMP
from shm.io import (DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, decode_image, png_bytes, read_image, set_max_pixels,
                    temporary_prefix, write_png_atomic)
from shm.jobs import error_line, unique_output_stems
from shm.outputs import image_output_suffixes, looks_like_output, write_image_outputs
from shm.video import VIDEO_EXTENSIONS


class _WithoutBeamNoise(logging.Filter):
    """Beam 2.77's warnings that say nothing about this pipeline: without its GCP extras it warns at
    import that BigQuery's clients are missing, and without torch (imported in one `try` with
    `resource` by apache_beam.ml.inference.base) at every model load that it cannot read memory."""

    MESSAGES = ("apitools not found", "Resource module is not available")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.MESSAGES)


logging.getLogger().addFilter(_WithoutBeamNoise())  # before Beam's import, which warns

import apache_beam as beam  # noqa: E402
from apache_beam.io import fileio  # noqa: E402
from apache_beam.io.filesystem import CompressionTypes  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.metrics import Metrics  # noqa: E402
from apache_beam.metrics.metric import MetricsFilter  # noqa: E402
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference  # noqa: E402
from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions, PortableOptions,  # noqa: E402
                                                  StandardOptions)

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the source tree, put on local workers' path
METRICS_NAMESPACE = "shm"
FAILURES_NAME = "failures.jsonl"
FAILED_TAG = "failed"
DIRECT_RUNNERS = (None, "DirectRunner", "direct")
DATAFLOW_RUNNERS = ("DataflowRunner", "dataflow")
STAGES = ("reading", "network", "upsampling", "foreground", "writing")
_GLOB_CHARACTERS = "*?["
_UNCOMPRESSED = CompressionTypes.UNCOMPRESSED


# ---------------------------------------------------------------------------------------------------
# Files on any Beam filesystem

def is_local(path: str) -> bool:
    """A path of this machine's filesystem (no `scheme://`)."""
    return FileSystems.get_scheme(path) is None


def join_path(folder: str, relative: str) -> str:
    """`folder/relative` with `/` on every filesystem (Beam's URLs and POSIX paths alike)."""
    return f"{folder.rstrip('/')}/{relative}" if folder else relative


def read_photo(path: str) -> np.ndarray:
    """A photo as uint8 RGB: local files through `shm.io.read_image` (as `inference.py` reads
    them), others through Beam's filesystems; `ImageReadError` naming the file if unreadable."""
    if is_local(path):
        return read_image(path)
    with FileSystems.open(path, compression_type=_UNCOMPRESSED) as file:
        return decode_image(file.read(), path)


def write_png(path: str, array: np.ndarray) -> None:
    """`shm.io.write_png_atomic` on any filesystem, never leaving a partial PNG: local paths
    through it; on a filesystem with folders (HDFS) to a hidden temporary name beside `path`, then
    renamed; on an object store (GCS, S3, Azure) straight to `path`, as an object appears only once
    its upload completes (a rename there is a copy and a delete: three write requests instead of
    one, against the bucket's request rate)."""
    if is_local(path):
        write_png_atomic(path, array)
        return
    data = png_bytes(array, name=path)
    if not FileSystems.get_filesystem(path).has_dirs():
        with FileSystems.create(path, mime_type="image/png", compression_type=_UNCOMPRESSED) as file:
            file.write(data)
        return
    folder, name = path.rsplit("/", 1)
    temporary = f"{folder}/{temporary_prefix(name)}{uuid.uuid4().hex[:8]}.tmp"
    try:
        with FileSystems.create(temporary, mime_type="image/png", compression_type=_UNCOMPRESSED) as file:
            file.write(data)
        FileSystems.rename([temporary], [path])
    except BaseException:
        if FileSystems.exists(temporary):
            FileSystems.delete([temporary])
        raise


def local_model_file(weights: str) -> str:
    """A model file on any filesystem as a local path (copied into a temporary folder if remote)."""
    if is_local(weights):
        return weights
    target = os.path.join(tempfile.mkdtemp(prefix="shm-model-"), weights.rsplit("/", 1)[-1])
    with FileSystems.open(weights, compression_type=_UNCOMPRESSED) as source, open(target, "wb") as sink:
        shutil.copyfileobj(source, sink)
    return target


# ---------------------------------------------------------------------------------------------------
# Settings and jobs

@dataclasses.dataclass(frozen=True, eq=False)
class MattingSettings:
    """Everything the workers need (pickled with the pipeline). `output`: a folder on any Beam
    filesystem; `weights` may be remote (`gs://...`, copied once per worker) and defaults to the
    preset's shipped model; `threads`: runtime threads per model (None: `threads_per_process`
    of `processes_per_machine`); `batch_size`: the most photos per network call."""

    output: str
    preset: str = "lite"
    weights: str | None = None
    backend: str | None = None
    working_size: int | None = None
    clamp: float = DEFAULT_CLAMP
    threads: int | None = None
    processes_per_machine: int | None = None
    batch_size: int = 1
    background: np.ndarray | None = None  # shm.outputs.parse_background's result
    save_trimap: bool = False
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    trust_savedmodel: bool = False

    def output_paths(self, output_stem: str) -> dict[str, str]:
        suffixes = image_output_suffixes(self.background is not None, self.save_trimap)
        return {kind: f"{output_stem}{suffix}" for kind, suffix in suffixes.items()}

    def load_matter(self) -> Matter:
        """The model as `inference.py` loads it, with threads that fit this machine."""
        return Matter.from_preset(self.preset, weights=self.weights and local_model_file(self.weights),
                                  working_size=self.working_size, clamp=self.clamp, backend=self.backend,
                                  num_threads=self.threads or threads_per_process(self.processes_per_machine),
                                  trust_savedmodel=self.trust_savedmodel)


def check_model(settings: MattingSettings) -> None:
    """Before a run: a local model is loaded once (`ModelFileError` naming the file if it cannot
    be used), a remote one must exist."""
    if settings.weights is not None and not is_local(settings.weights):
        if not FileSystems.exists(settings.weights):
            raise ModelFileError(f"{settings.weights}: no such model file")
        return
    settings.load_matter()


def threads_per_process(processes_per_machine: int | None) -> int:
    """Runtime threads per model: this machine's cores shared by the processes (or threads) that
    each run one; 1 when there is one per core (None)."""
    if not processes_per_machine:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // processes_per_machine)


@dataclasses.dataclass(frozen=True)
class PhotoJob:
    """One photo: `path` on any filesystem, `output_stem` + a suffix of IMAGE_OUTPUTS = an output."""

    path: str
    output_stem: str


def failure_record(path: str, stage: str, error: Exception) -> str:
    """One line of failures.jsonl."""
    return json.dumps({"path": path, "stage": stage, "error": error_line(error, path)})


# ---------------------------------------------------------------------------------------------------
# Inputs: (path, name under the input's root)

def pattern_root(pattern: str) -> str:
    """The folder a pattern's matches are named under: the pattern up to the last `/` before
    its first wildcard (`photos/**/*.jpg` -> `photos/`, `gs://b/p/img_*.png` -> `gs://b/p/`)."""
    wildcard = min((pattern.index(character) for character in _GLOB_CHARACTERS if character in pattern),
                   default=len(pattern))
    return pattern[:pattern.rfind("/", 0, wildcard) + 1]


def folder_pattern(text: str, recursive: bool = False) -> str:
    """A local folder (or any path ending in `/`) means its files, `FOLDER/*`, or with `recursive`
    `FOLDER/**` (subfolders too), as `inference.py --input FOLDER [--recursive]`; else `text`."""
    if text.endswith("/") or (is_local(text) and os.path.isdir(text)):
        return join_path(text, "**" if recursive else "*")
    return text


def _matched_entry(metadata, root: str) -> tuple[str, str]:
    return metadata.path, metadata.path[len(root):]


class PatternSource(beam.PTransform):
    """The files matching a pattern on any Beam filesystem, named by their path under
    `pattern_root`; `*` stays in a folder, `**` goes into subfolders."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern

    def check(self) -> None:
        """`ValueError` naming the pattern if no file matches it (or its filesystem is missing)."""
        if not FileSystems.match([self.pattern], limits=[1])[0].metadata_list:
            raise ValueError(f"{self.pattern}: no file matches this pattern")

    def expand(self, pbegin):
        return (pbegin | "Match" >> fileio.MatchFiles(self.pattern)
                | "Name" >> beam.Map(_matched_entry, pattern_root(self.pattern)))


def list_entries(line: str, root: str) -> Iterator[tuple[str, str]]:
    """A list file's line as (path, name): relative lines are under the list's folder `root` and
    keep their subfolders; absolute paths, URLs and paths through `..` are named by their file
    name. Empty lines and `#` comments give nothing."""
    line = line.strip()
    if not line or line.startswith("#"):
        return
    relative = PurePosixPath(line)
    if FileSystems.get_scheme(line) is not None or relative.is_absolute() or ".." in relative.parts:
        yield line, line.rsplit("/", 1)[-1]
    else:
        yield join_path(root, str(relative)), str(relative)


class ListSource(beam.PTransform):
    """The files named in a text file, one a line (`list_entries`)."""

    def __init__(self, list_path: str):
        super().__init__()
        self.list_path = list_path

    def check(self) -> None:
        if not FileSystems.exists(self.list_path):
            raise ValueError(f"{self.list_path}: no such list file")

    def expand(self, pbegin):
        root = self.list_path.rsplit("/", 1)[0] if "/" in self.list_path else ""
        return (pbegin | "Read list" >> beam.io.ReadFromText(self.list_path)
                | "Name" >> beam.FlatMap(list_entries, root))


# ---------------------------------------------------------------------------------------------------
# The steps

_KEPT_EXTENSION = re.compile("(_(" + "|".join(extension.lstrip(".") for extension in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
                             + r")(_\d+)?)+$", re.IGNORECASE)


def naming_group(name: str) -> str:
    """The key of the inputs whose output names `unique_output_stems` decides together: its
    case-folded stem without the `_EXT` / `_EXT_N` endings that rule adds (`b.jpg`, `B.png`,
    `b_jpg.png` are one group). A name made by the rule can only meet a name of its group, so the
    rule applied group by group names every photo as applied to the whole folder, while the groups
    (a stem and its variants, not a folder of millions) spread over the workers."""
    return _KEPT_EXTENSION.sub("", PurePosixPath(name).with_suffix("").as_posix()).casefold()


class SelectMedia(beam.DoFn):
    """(naming group, (path, name)) of photos and videos, keyed for `NameOutputs`; hidden files and
    earlier outputs inside the output folder are left out, other files counted as `ignored`."""

    def __init__(self, output: str):
        self.output = output
        self.ignored = Metrics.counter(METRICS_NAMESPACE, "ignored")

    def _in_output(self, path: str) -> bool:
        if is_local(path) and is_local(self.output):
            return Path(self.output).resolve() in Path(path).resolve().parents
        return path.startswith(self.output.rstrip("/") + "/")

    def process(self, entry: tuple[str, str]) -> Iterator[tuple[str, tuple[str, str]]]:
        path, name = entry
        relative = PurePosixPath(name)
        if any(part.startswith(".") for part in relative.parts):
            return
        if looks_like_output(relative) and self._in_output(path):
            return
        if relative.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
            yield naming_group(name), (path, name)
        else:
            self.ignored.inc()


class NameOutputs(beam.DoFn):
    """A naming group's photos get `inference.py`'s names (`unique_output_stems`, in its sorted
    order); videos (which `inference.py` mattes) are counted as `videos` and left out."""

    def __init__(self, output: str):
        self.output = output
        self.videos = Metrics.counter(METRICS_NAMESPACE, "videos")

    def process(self, group: tuple[str, Iterable[tuple[str, str]]]) -> Iterator[PhotoJob]:
        entries = sorted(set(group[1]), key=lambda entry: PurePosixPath(entry[1]))
        names = [PurePosixPath(name) for _, name in entries]
        for (path, _), name, stem in zip(entries, names, unique_output_stems(names)):
            if name.suffix.lower() in VIDEO_EXTENSIONS:
                self.videos.inc()
            else:
                yield PhotoJob(path, join_path(self.output, stem.as_posix()))


class SkipExisting(beam.DoFn):
    """Leaves out (and counts as `skipped`) the photos whose outputs all exist, unless overwriting."""

    def __init__(self, settings: MattingSettings):
        self.settings = settings
        self.skipped = Metrics.counter(METRICS_NAMESPACE, "skipped")

    def process(self, job: PhotoJob) -> Iterator[PhotoJob]:
        paths = self.settings.output_paths(job.output_stem).values()
        if not self.settings.overwrite and all(FileSystems.exists(path) for path in paths):
            self.skipped.inc()
            return
        yield job


class ReadPhotos(beam.DoFn):
    """(job, uint8 RGB photo); an unreadable file goes to the `failed` output."""

    def __init__(self, max_pixels: int):
        self.max_pixels = max_pixels
        self.failed = Metrics.counter(METRICS_NAMESPACE, "failed")
        self.reading = Metrics.distribution(METRICS_NAMESPACE, "reading_us")

    def setup(self):
        set_max_pixels(self.max_pixels)  # Pillow's limit is per process: each worker's

    def process(self, job: PhotoJob):
        start = time.perf_counter()
        try:
            photo = read_photo(job.path)
        except Exception as error:  # one bad file never stops the job
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED_TAG, failure_record(job.path, "reading", error))
            return
        self.reading.update(round((time.perf_counter() - start) * 1e6))
        yield job, photo


class MattingModelHandler(ModelHandler[np.ndarray, PredictionResult, Matter]):
    """`RunInference`'s model: a `Matter` (network, upsampling, foreground colours), loaded once
    per worker process and shared by its threads (Beam's `shared.Shared`); a batch of photos runs
    the network once per network size (`Matter.matte_batch`)."""

    def __init__(self, settings: MattingSettings):
        super().__init__(min_batch_size=1, max_batch_size=settings.batch_size)
        self.settings = settings

    def load_model(self) -> Matter:
        return self.settings.load_matter()

    def run_inference(self, batch: Sequence[np.ndarray], model: Matter,
                      inference_args: dict | None = None) -> Iterable[PredictionResult]:
        results = model.matte_batch(batch, foreground=True, trimap=self.settings.save_trimap)
        return [PredictionResult(photo, result) for photo, result in zip(batch, results)]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(photo.nbytes for photo in batch)  # Beam's default pickles the whole batch

    def get_metrics_namespace(self) -> str:
        return "shm_RunInference"


class MattingFailures(beam.DoFn):
    """failures.jsonl lines of the photos of a batch whose matting raised."""

    def __init__(self):
        self.failed = Metrics.counter(METRICS_NAMESPACE, "failed")

    def process(self, failure) -> Iterator[str]:
        batch, (error_type, _, traceback_lines) = failure
        # As shm.jobs.error_line words it: the last line of the message, after "Type: ".
        message = traceback_lines[-1].partition(": ")[2].strip().splitlines() or [""]
        error = f"{error_type.__name__}: {message[-1][:200]}"
        for job, _ in batch:
            self.failed.inc()
            yield json.dumps({"path": job.path, "stage": "matting", "error": f"{job.path}: {error}"})


class WriteOutputs(beam.DoFn):
    """Writes a photo's PNGs (`shm.outputs.write_image_outputs` onto Beam's filesystems, each
    written to a temporary name and renamed); counts `processed` and the stage times. Shows a
    progress bar when it runs in the launching process on a terminal (the DirectRunner's default
    in_memory mode)."""

    def __init__(self, settings: MattingSettings):
        self.settings = settings
        self.launcher_pid = os.getpid()
        self.processed = Metrics.counter(METRICS_NAMESPACE, "processed")
        self.failed = Metrics.counter(METRICS_NAMESPACE, "failed")
        self.stage_times = {stage: Metrics.distribution(METRICS_NAMESPACE, f"{stage}_us") for stage in STAGES[1:]}
        self.progress = None

    def setup(self):
        if os.getpid() == self.launcher_pid:
            self.progress = tqdm(desc="matting", unit="photo", disable=None)

    def teardown(self):
        if self.progress is not None:
            self.progress.close()

    def process(self, element: tuple[PhotoJob, PredictionResult]):
        job, prediction = element
        result: MatteResult = prediction.inference
        settings = self.settings
        try:
            result.times.writing = write_image_outputs(
                result, prediction.example, settings.output_paths(job.output_stem), settings.background,
                settings.overwrite, exists=FileSystems.exists, write=write_png)
        except Exception as error:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILED_TAG, failure_record(job.path, "writing", error))
            return
        self.processed.inc()
        for stage, distribution in self.stage_times.items():
            distribution.update(round(getattr(result.times, stage) * 1e6))
        if self.progress is not None:
            self.progress.update()
        yield job.path


def build_pipeline(pipeline: beam.Pipeline, source: beam.PTransform, settings: MattingSettings) -> None:
    """Add the matting steps to `pipeline`: photos from `source` ((path, name) pairs, e.g.
    `PatternSource`, `ListSource`), outputs and failures.jsonl into `settings.output`."""
    jobs = (pipeline
            | "List inputs" >> source
            | "Select media" >> beam.ParDo(SelectMedia(settings.output))
            # Also spreads the photos over the workers: a match is listed by one worker.
            | "Group by output name" >> beam.GroupByKey()
            | "Name outputs" >> beam.ParDo(NameOutputs(settings.output))
            | "Skip existing" >> beam.ParDo(SkipExisting(settings)))
    photos = jobs | "Read photos" >> beam.ParDo(ReadPhotos(settings.max_pixels)).with_outputs(FAILED_TAG, main="photos")
    mattes, dead_letters = (photos.photos | "Matte" >> RunInference(KeyedModelHandler(
        MattingModelHandler(settings))).with_exception_handling())
    written = mattes | "Write outputs" >> beam.ParDo(WriteOutputs(settings)).with_outputs(FAILED_TAG, main="written")
    matting_failures = dead_letters.failed_inferences | "Matting failures" >> beam.ParDo(MattingFailures())
    _ = ((photos[FAILED_TAG], matting_failures, written[FAILED_TAG])
         | "All failures" >> beam.Flatten()
         | "Write failures" >> beam.io.WriteToText(join_path(settings.output, FAILURES_NAME),
                                                   shard_name_template="", num_shards=1))


# ---------------------------------------------------------------------------------------------------
# Running and reporting

@dataclasses.dataclass
class MattingCounts:
    """What a pipeline run did, from its Beam metrics; `times` and `reading` are sums in seconds."""

    processed: int = 0
    skipped: int = 0
    failed: int = 0
    ignored: int = 0
    videos: int = 0
    reading: float = 0.0
    times: StageTimes = dataclasses.field(default_factory=StageTimes)

    def line(self) -> str:
        text = f"{self.processed} processed, {self.skipped} skipped (outputs exist), {self.failed} failed"
        if self.ignored:
            text += f", {self.ignored} non-image files ignored"
        if self.videos:
            text += f", {self.videos} videos left out (inference.py mattes videos)"
        if self.processed:
            text += (f"; per photo: reading {self.reading / self.processed:.3f} s, then "
                     f"{self.times.describe(self.processed)}")
        return text


def read_counts(result: beam.runners.runner.PipelineResult) -> MattingCounts | None:
    """The counts of a finished run, or None if its runner reports no metrics."""
    try:
        metrics = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except (NotImplementedError, AttributeError):
        return None

    def value(metric_result):
        committed = metric_result.committed
        return committed if committed is not None else metric_result.attempted

    counts = MattingCounts()
    for counter in metrics["counters"]:  # "failed" is counted by several steps: summed
        name = counter.key.metric.name
        setattr(counts, name, getattr(counts, name) + value(counter))
    seconds = {stage: 0.0 for stage in STAGES}
    for distribution in metrics["distributions"]:
        seconds[distribution.key.metric.name.removesuffix("_us")] += value(distribution).sum / 1e6
    counts.reading = seconds.pop("reading")
    counts.times = StageTimes(**seconds)
    return counts


def processes_per_machine(options: PipelineOptions) -> int | None:
    """How many processes (or threads) run a model at once on one machine: the DirectRunner's
    `--direct_num_workers`, a portable runner's (Flink, Spark) `--sdk_worker_parallelism`; None
    (one per core) for Dataflow, which starts a process per vCPU, and when they are 0 (one per core
    for the DirectRunner, the runner's choice for the others)."""
    runner = options.view_as(StandardOptions).runner
    if runner in DIRECT_RUNNERS:
        return options.view_as(DirectOptions).direct_num_workers or None
    if runner in DATAFLOW_RUNNERS:
        return None
    return int(options.view_as(PortableOptions).sdk_worker_parallelism) or None


def make_project_importable_by_local_workers() -> None:
    """The DirectRunner's multi_processing workers are new Python processes: give them the project
    on PYTHONPATH (remote workers install it with `--setup_file`, docs/beam.md)."""
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if str(PROJECT_ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, paths)])


def run_matting(source: beam.PTransform, settings: MattingSettings,
                beam_args: Sequence[str] = ()) -> MattingCounts | None:
    """Build and run the pipeline with Beam's options `beam_args` (`--runner`, ...); wait for it
    and return its counts (None on a runner without metrics)."""
    beam_args = list(beam_args)
    if not any(arg.startswith("--default_sdk_harness_log_level") for arg in beam_args):
        beam_args.append("--default_sdk_harness_log_level=WARNING")  # workers' INFO lines would bury the summary
    options = PipelineOptions(beam_args)
    options.get_all_options(display_warnings=True)  # Beam's own warning for options it does not know
    if settings.threads is None and settings.processes_per_machine is None:
        settings = dataclasses.replace(settings, processes_per_machine=processes_per_machine(options))
    if options.view_as(StandardOptions).runner in DIRECT_RUNNERS:
        make_project_importable_by_local_workers()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, source, settings)
    result = pipeline.run()
    result.wait_until_finish()
    return read_counts(result)


def first_failures(output: str, count: int = 10) -> list[str]:
    """The error messages of the first `count` lines of the output's failures.jsonl."""
    path = join_path(output, FAILURES_NAME)
    if not FileSystems.exists(path):
        return []
    messages = []
    with FileSystems.open(path, compression_type=_UNCOMPRESSED) as file:
        for line in file:
            if len(messages) == count:
                break
            messages.append(json.loads(line)["error"])
    return messages


def report(counts: MattingCounts | None, output: str, seconds: float) -> int:
    """Print the failures (the first ten) and the counts; the exit status: 1 if any photo failed."""
    failures = first_failures(output)
    for message in failures:
        print(f"error: {message}", file=sys.stderr)
    if counts is None:
        print(f"done in {seconds:.1f} s (this runner reports no metrics: see its console); outputs in "
              f"{output}, failures in {join_path(output, FAILURES_NAME)}")
        return 1 if failures else 0
    more = f"; failures listed in {join_path(output, FAILURES_NAME)}" if counts.failed else ""
    print(f"{counts.line()}; {seconds:.1f} s in all; outputs in {output}{more}")
    return 1 if counts.failed else 0
