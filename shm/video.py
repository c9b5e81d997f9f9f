"""Videos in and out through PyAV (FFmpeg's libraries, bundled in the `av` wheel).

In: any video FFmpeg decodes (frames as uint8 RGB, rotated upright as phones tag them), or a
folder of images taken as the frames of one video (`FrameSource.from_images`).
Out (`VideoWriter`), one file or folder per kind of output:

| kind | file | format |
| --- | --- | --- |
| `alpha` | `NAME_alpha.mp4` | H.264 (yuv420p, plays in browsers), the matte as grey |
| `composite` | `NAME_composite.mp4` | H.264, the person on the background |
| `foreground` | `NAME_foreground.mp4` | H.264, the estimated foreground colours |
| `rgba` | `NAME_rgba.webm` | VP9 with an alpha channel (yuva420p): the cut-out, transparent |
| `frames` | `NAME_frames/000000.png` ... | RGBA PNG per frame |

The videos keep the input's frame rate and carry its audio: copied when the container takes the
codec (AAC, MP3, AC-3, ALAC in MP4; Opus, Vorbis in WebM), else re-encoded (AAC, Opus). H.264 in
4:2:0 needs even sides: an odd last row or column is cropped from the MP4 outputs only.

Decoding a VP9 alpha channel needs the libvpx decoder (`read_rgba_frames`): FFmpeg's own VP9
decoder, which most players use, shows the colour without the alpha.
"""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from shm.io import list_images, read_image, write_png_atomic

# PyAV is imported where a video is opened: `import shm.jobs` (photos only, e.g. on Beam's
# workers, which install the photo path's packages) does not need it.

# Input files taken for videos, by suffix (lower case).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
VIDEO_FORMATS = {"alpha": ".mp4", "composite": ".mp4", "foreground": ".mp4", "rgba": ".webm", "frames": ""}
DEFAULT_FRAME_RATE = Fraction(25)
# H.264: visually lossless at a speed that keeps encoding a small part of the time per frame.
H264_OPTIONS = {"crf": "18", "preset": "fast"}
# VP9: libvpx is slow; realtime mode with row threads keeps it near H.264's speed on 2 cores.
VP9_OPTIONS = {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
AUDIO_COPIED = {".mp4": {"aac", "mp3", "ac3", "alac"}, ".webm": {"opus", "vorbis"}}
AUDIO_ENCODERS = {".mp4": ("aac", None), ".webm": ("libopus", 48000)}  # (codec, sample rate or the input's)


class VideoError(ValueError):
    """A video that cannot be read or written; the message names the file."""


def _reason(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


@dataclasses.dataclass
class FrameSource:
    """The frames of one video file or image folder: iterate for uint8 RGB (H, W, 3) frames."""

    path: Path
    frame_rate: Fraction
    frame_count: int | None
    audio_path: Path | None  # the file whose audio the outputs carry, or None
    _frame_paths: list[Path] | None = None

    @classmethod
    def from_video(cls, path: str | os.PathLike) -> "FrameSource":
        import av

        path = Path(path)
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise VideoError(f"{path}: no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or DEFAULT_FRAME_RATE
                audio = path if container.streams.audio else None
                return cls(path, Fraction(rate), stream.frames or None, audio)
        except av.FFmpegError as error:
            raise VideoError(f"{path}: cannot open as a video ({_reason(error)})") from None

    @classmethod
    def from_images(cls, folder: str | os.PathLike, frame_rate: float) -> "FrameSource":
        """The images of `folder`, sorted by name, as frames at `frame_rate` per second."""
        folder = Path(folder)
        frames = list_images(folder)
        if not frames:
            raise VideoError(f"{folder}: no images found to use as frames")
        if frame_rate <= 0:
            raise VideoError(f"{folder}: the frame rate must be positive, got {frame_rate}")
        return cls(folder, Fraction(frame_rate).limit_denominator(1001), len(frames), None, frames)

    def __iter__(self) -> Iterator[np.ndarray]:
        import av

        if self._frame_paths is not None:
            first_shape = None
            for path in self._frame_paths:
                frame = read_image(path)
                first_shape = first_shape or frame.shape
                if frame.shape != first_shape:
                    raise VideoError(f"{path}: size {frame.shape[1]}x{frame.shape[0]} differs from the first "
                                     f"frame's {first_shape[1]}x{first_shape[0]}")
                yield frame
            return
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    # The display matrix rotates counterclockwise by `rotation` degrees, as np.rot90 does.
                    yield np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), frame.rotation // 90))
        except av.FFmpegError as error:
            raise VideoError(f"{self.path}: cannot decode ({_reason(error)})") from None


class VideoWriter:
    """One output of `kind` (see the module docstring) at `path`, written frame by frame.

    `path` is where the data goes (a temporary name is fine: the format comes from `kind`);
    `audio_path`: a file whose first audio stream the video carries. Call `close()` once the
    frames are written; `abort()` on failure.
    """

    def __init__(self, path: str | os.PathLike, kind: str, frame_rate: Fraction, audio_path: Path | None = None):
        if kind not in VIDEO_FORMATS:
            raise ValueError(f"unknown video output {kind!r}; choose one of {', '.join(VIDEO_FORMATS)}")
        self.path, self.kind, self.frame_rate = Path(path), kind, frame_rate
        self.audio_path = audio_path if kind != "frames" else None
        self.suffix = VIDEO_FORMATS[kind]
        self.frames = 0
        self._container = self._video = self._audio = self._audio_input = None

    def _open(self, height: int, width: int) -> None:
        import av

        self._container = av.open(str(self.path), "w", format={".mp4": "mp4", ".webm": "webm"}[self.suffix])
        codec, options, pixels = (("libx264", H264_OPTIONS, "yuv420p") if self.suffix == ".mp4"
                                  else ("libvpx-vp9", VP9_OPTIONS, "yuva420p"))
        self._video = self._container.add_stream(codec, rate=self.frame_rate, options=dict(options))
        self._video.width, self._video.height, self._video.pix_fmt = width, height, pixels
        if self.audio_path is not None:
            self._add_audio()

    def _add_audio(self) -> None:
        import av

        self._audio_input = av.open(str(self.audio_path))
        source = self._audio_input.streams.audio[0]
        if source.codec_context.name in AUDIO_COPIED[self.suffix]:
            self._audio, self._transcode = self._container.add_stream_from_template(source), False
            return
        codec, rate = AUDIO_ENCODERS[self.suffix]
        self._audio = self._container.add_stream(codec, rate=rate or source.rate)
        # A layout of unspecified order ("1 channels") is refused by the encoders: name it.
        self._audio.layout = "mono" if source.layout.nb_channels == 1 else "stereo"
        self._transcode = True

    def write(self, frame: np.ndarray) -> None:
        """Add one frame: uint8 grey (H, W) for `alpha`, RGB (H, W, 3) for `composite` and
        `foreground`, RGBA (H, W, 4) for `rgba` and `frames`."""
        import av

        if self.kind == "frames":
            write_png_atomic(self.path / f"{self.frames:06d}.png", frame)
            self.frames += 1
            return
        if self.suffix == ".mp4":
            frame = frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]
        if self._container is None:
            if min(frame.shape[:2]) < 2:
                raise VideoError(f"{self.path}: frames of {frame.shape[1]}x{frame.shape[0]} are too small to encode")
            self._open(*frame.shape[:2])
        layout = {1: "gray", 3: "rgb24", 4: "rgba"}[1 if frame.ndim == 2 else frame.shape[2]]
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=layout)
        video_frame.pts = self.frames
        self._container.mux(self._video.encode(video_frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder, add the audio, finish the file."""
        if self._container is None:
            return
        try:
            self._container.mux(self._video.encode(None))
            if self._audio is not None:
                self._mux_audio()
        finally:
            self.abort()

    def _mux_audio(self) -> None:
        source = self._audio_input.streams.audio[0]
        for packet in self._audio_input.demux(source):
            if packet.dts is None:  # the demuxer's final empty packet
                continue
            if not self._transcode:
                packet.stream = self._audio
                self._container.mux(packet)
                continue
            for frame in packet.decode():
                frame.pts = None  # the encoder's resampler renumbers samples
                self._container.mux(self._audio.encode(frame))
        if self._transcode:
            self._container.mux(self._audio.encode(None))

    def abort(self) -> None:
        """Close the files without finishing anything more."""
        for container in (self._audio_input, self._container):
            if container is not None:
                container.close()
        self._container = self._audio_input = None


def read_rgba_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of a VP9 WebM with alpha (a `rgba` output) as uint8 RGBA (H, W, 4)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        decoder.extradata = stream.codec_context.extradata
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            for frame in decoder.decode(packet):
                yield frame.to_ndarray(format="rgba")
