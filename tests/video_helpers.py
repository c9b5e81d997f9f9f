"""Small videos with sound for the video tests (tests/test_video.py, tests/test_inference.py)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16000


def write_clip(path: Path, frames: int = 5, fps: int = 12, height: int = 48, width: int = 64,
               audio_codec: str | None = "aac", seed: int = 0) -> list[np.ndarray]:
    """Random RGB frames encoded losslessly enough to compare (H.264 at crf 0 in .mp4, FFV1 in
    .mkv), with a mono 440 Hz tone as long as the video in `audio_codec` (None: no sound).
    Returns the frames as written."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(frames)]
    with av.open(str(path), "w") as container:
        lossless = ("libx264", {"crf": "0"}, "yuv444p") if path.suffix == ".mp4" else ("ffv1", {}, "yuv444p")
        video = container.add_stream(lossless[0], rate=fps, options=lossless[1])
        video.width, video.height, video.pix_fmt = width, height, lossless[2]
        audio = container.add_stream(audio_codec, rate=SAMPLE_RATE) if audio_codec else None
        if audio is not None:
            audio.layout = "mono"
        for index, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            seconds = np.arange(SAMPLE_RATE * frames // fps) / SAMPLE_RATE
            tone = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * seconds)).astype(np.float32)[None],
                                              format="flt", layout="mono")
            tone.sample_rate = SAMPLE_RATE
            container.mux(audio.encode(tone))
            container.mux(audio.encode(None))
    return images


def streams(path: Path) -> dict[str, tuple[str, float | None]]:
    """{"video": (codec, frame rate), "audio": (codec, seconds)} of a file (kinds it has)."""
    with av.open(str(path)) as container:
        found = {}
        if container.streams.video:
            stream = container.streams.video[0]
            found["video"] = (stream.codec_context.name, float(stream.average_rate))
        if container.streams.audio:
            stream = container.streams.audio[0]
            seconds = float(stream.duration * stream.time_base) if stream.duration else None
            found["audio"] = (stream.codec_context.name, seconds)
        return found


def decode_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
