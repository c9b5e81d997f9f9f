"""shm.video: frames in, H.264 / VP9-with-alpha / PNG-sequence outputs with the input's audio."""

from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from shm.video import FrameSource, VideoError, VideoWriter, read_rgba_frames
from video_helpers import decode_rgb, streams, write_clip


def test_frames_come_back_as_written_with_rate_and_sound(tmp_path):
    written = write_clip(tmp_path / "clip.mp4", frames=4, fps=12)
    source = FrameSource.from_video(tmp_path / "clip.mp4")
    assert source.frame_rate == 12 and source.frame_count == 4 and source.audio_path == tmp_path / "clip.mp4"
    frames = list(source)
    assert len(frames) == 4 and frames[0].dtype == np.uint8
    for frame, original in zip(frames, written):
        assert np.abs(frame.astype(int) - original).max() <= 3  # yuv444 rounding only


@pytest.mark.parametrize("audio_codec, copied_into_mp4", [("aac", True), ("pcm_s16le", False)])
def test_outputs_keep_rate_and_carry_the_audio(tmp_path, audio_codec, copied_into_mp4):
    clip = tmp_path / ("clip.mp4" if copied_into_mp4 else "clip.mkv")
    write_clip(clip, frames=6, fps=12, height=49, width=65, audio_codec=audio_codec)  # odd sides
    source = FrameSource.from_video(clip)
    writers = {kind: VideoWriter(tmp_path / name, kind, source.frame_rate, source.audio_path)
               for kind, name in (("composite", "c.mp4"), ("alpha", "a.mp4"), ("rgba", "r.webm"))}
    alphas = []
    for index, frame in enumerate(source):
        alpha = np.full(frame.shape[:2], index * 40, np.uint8)
        alphas.append(alpha)
        writers["composite"].write(frame)
        writers["alpha"].write(alpha)
        writers["rgba"].write(np.dstack([frame, alpha]))
    for writer in writers.values():
        writer.close()
    for name, codec in (("c.mp4", "h264"), ("a.mp4", "h264"), ("r.webm", "vp9")):
        found = streams(tmp_path / name)
        assert found["video"] == (codec, 12.0), name
        assert found["audio"][0] == ("opus" if name.endswith(".webm") else "aac"), name
    # The H.264 outputs drop the odd last row and column; VP9 keeps every pixel.
    assert decode_rgb(tmp_path / "c.mp4")[0].shape == (48, 64, 3)
    grey = [frame[..., 0] for frame in decode_rgb(tmp_path / "a.mp4")]
    assert len(grey) == 6 and all(abs(int(g.mean()) - int(a[0, 0])) <= 2 for g, a in zip(grey, alphas))
    rgba = list(read_rgba_frames(tmp_path / "r.webm"))
    assert len(rgba) == 6 and rgba[0].shape == (49, 65, 4)
    assert all(abs(int(frame[..., 3].mean()) - int(a[0, 0])) <= 3 for frame, a in zip(rgba, alphas))


def test_a_folder_of_images_is_a_video(tmp_path):
    for index in range(3):
        Image.fromarray(np.full((8, 10, 3), index * 50, np.uint8)).save(tmp_path / f"f{index:03d}.png")
    source = FrameSource.from_images(tmp_path, 29.97)
    assert source.frame_rate == Fraction(2997, 100) and source.frame_count == 3 and source.audio_path is None
    assert [int(frame.mean()) for frame in source] == [0, 50, 100]
    Image.fromarray(np.zeros((9, 10, 3), np.uint8)).save(tmp_path / "f003.png")
    with pytest.raises(VideoError, match="f003.png: size 10x9 differs from the first frame's 10x8"):
        list(FrameSource.from_images(tmp_path, 25))
    with pytest.raises(VideoError, match="no images found"):
        FrameSource.from_images(tmp_path / "f000.png", 25)


def test_png_sequence_output_and_broken_inputs(tmp_path):
    writer = VideoWriter(tmp_path / "frames", "frames", Fraction(25))
    (tmp_path / "frames").mkdir()
    for index in range(2):
        writer.write(np.full((4, 5, 4), index, np.uint8))
    writer.close()
    assert sorted(path.name for path in (tmp_path / "frames").iterdir()) == ["000000.png", "000001.png"]
    assert Image.open(tmp_path / "frames" / "000001.png").mode == "RGBA"
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x01 not a video")
    with pytest.raises(VideoError, match="broken.mp4: cannot open as a video"):
        FrameSource.from_video(tmp_path / "broken.mp4")
